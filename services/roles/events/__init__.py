"""Events the roles service publishes."""
