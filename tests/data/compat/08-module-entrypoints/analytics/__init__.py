from .jobs.weekly import weekly as exported_flow
