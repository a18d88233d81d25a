"""TRIGGERS: what launches a reconcile or a run besides a person: Git pushes, the GitHub Action, a file
watcher. Each module is imported by name (``from reconciler.triggers import watch``); the file
watcher's module imports watchfiles, so it is only loaded by the command that uses it.
"""
