"""The scheduler service: admission, direct jobs, uploads, planning, repeats and reconciliation."""
