"""The scheduler service: admission, direct jobs, planning, repeats and reconciliation."""
