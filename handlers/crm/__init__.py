"""CRM REST resources: one package per collection, one file per endpoint."""
