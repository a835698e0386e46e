"""The roles service: directory, CRM roles, assignments and rules of engagement."""
