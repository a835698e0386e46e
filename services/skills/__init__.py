"""The skills service: catalogue, assessments, effective levels and role fit."""
