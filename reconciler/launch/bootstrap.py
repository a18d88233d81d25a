"""The in-job runtime as a self-contained ``python -c`` command, so push pools run in stock images.

A run on ``ecs:push``, ``cloud-run(-v2):push`` or ``azure-container-instance:push`` (without a Prefect
server as the state) must work in any image that has Python, and nothing of ours: ``python:3.12-slim``
for a plain function, Prefect's image for a ``@flow``. So the runtime (``reconciler/runtime.py``, which
imports only the standard library) travels *with the job*: its source, with docstrings, annotations
and the local-only ``--exec`` supervisor removed, is compressed (zlib) and base64-encoded into a
``python -c`` program that decodes and executes it. Nothing is installed or downloaded when the
container starts; the image needs ``python`` (3.8 or later) on its ``PATH``.

Size: about 3 KB, the same for every run (it depends only on this release's runtime). The limits it
has to fit, and which each launcher checks for the whole request it sends:

* ECS ``RunTask``: "A total of 8192 characters are allowed for overrides. This limit includes the
  JSON formatting characters of the override structure."
  (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html, ``overrides``);
  the command travels in the container override together with the run's environment.
* Cloud Run: the command lives in the Job resource, not in the per-run overrides
  (https://cloud.google.com/run/docs/reference/rest/v2/Container); the run's environment goes in
  ``RunJobRequest.Overrides``, where each value may hold 32768 bytes and a container 1000 variables
  (https://cloud.google.com/run/docs/configuring/jobs/environment-variables).
* Azure Container Instances: the command is the container's ``command`` array in the container
  group (https://learn.microsoft.com/azure/container-instances/container-instances-start-command);
  Azure documents no length limit for it, so the binding one is Linux's 131072 bytes per argument
  (``MAX_ARG_STRLEN``, execve(2)), far above 3 KB.
"""

from __future__ import annotations

import ast
import base64
import functools
import zlib
from importlib import resources

# The image of a push pool that sets none: Prefect's, as Prefect's ECS and ACI workers default to
# (Cloud Run's template names it itself). It has Python and Prefect, so plain functions and @flows run.
PREFECT_IMAGE = "prefecthq/prefect:3-latest"
RUNTIME_FILE = "runtime.py"
LOCAL_ONLY = frozenset({"supervise"})  # the --exec supervisor is for local process pools only


@functools.cache
def runtime_program() -> str:
    """The runtime's source, minimal: no docstrings, no annotations, no ``--exec``, runs ``main()``."""
    source = (resources.files("reconciler") / RUNTIME_FILE).read_text(encoding="utf-8")
    tree = ast.parse(source)
    body: list[ast.stmt] = []
    for node in tree.body:
        if isinstance(node, ast.If):  # the ``if __name__ == "__main__"`` block: replaced below
            continue
        if isinstance(node, ast.FunctionDef) and node.name in LOCAL_ONLY:
            continue
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            continue
        body.append(node)
    tree.body = body
    _Strip().visit(tree)
    tree.body.append(ast.parse("sys.exit(main())").body[0])
    _drop_docstring(tree)
    return ast.unparse(ast.fix_missing_locations(tree))


@functools.cache
def inline_command(python: str = "python") -> tuple[str, ...]:
    """``(python, "-c", PROGRAM)``: decodes and runs the runtime; the same for every run."""
    packed = base64.b64encode(zlib.compress(runtime_program().encode("utf-8"), 9)).decode("ascii")
    program = f"import base64,zlib;exec(zlib.decompress(base64.b64decode('{packed}')))"
    return (python, "-c", program)


def is_inline(command: tuple[str, ...] | list[str]) -> bool:
    """Whether ``command`` is the travelling runtime (a launcher's own rules may treat it specially)."""
    return list(command[1:]) == list(inline_command()[1:])


class _Strip(ast.NodeTransformer):
    """Remove what the program does not need to run: annotations and docstrings."""

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        return self._function(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> ast.AST:
        return self._function(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST | None:
        if node.value is None:
            return None
        return ast.copy_location(ast.Assign(targets=[node.target], value=node.value), node)

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.AST:
        node.returns = None
        arguments = node.args
        for arg in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]:
            arg.annotation = None
        for extra in (arguments.vararg, arguments.kwarg):
            if extra is not None:
                extra.annotation = None
        _drop_docstring(node)
        self.generic_visit(node)
        return node


def _drop_docstring(node: ast.Module | ast.FunctionDef | ast.AsyncFunctionDef) -> None:
    first = node.body[0] if node.body else None
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        node.body = node.body[1:] or [ast.Pass()]
