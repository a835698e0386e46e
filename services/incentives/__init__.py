"""The incentives service: behaviours, schemes, scorecards and awards."""
