"""Pure rules: catalogue, periods, credit splits, scoring and payout."""
