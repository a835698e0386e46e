"""Events the skills service publishes and consumes."""
