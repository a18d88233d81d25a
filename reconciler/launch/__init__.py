"""LAUNCH: push runs to infrastructure (process, ECS, Cloud Run, ACI) and follow them to the end."""

from reconciler.launch import runs
from reconciler.launch.base import Job, JobStatus, Launcher, LogChunk
from reconciler.launch.registry import make_launcher
from reconciler.launch.runs import RunContext

__all__ = ["Job", "JobStatus", "Launcher", "LogChunk", "RunContext", "make_launcher", "runs"]
