from .jobs.weekly import weekly as exported_flow

__all__ = ["exported_flow"]
