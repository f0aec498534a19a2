"""The operator API: what dashboards and admin tools read and do, in few round trips."""
