"""Push triggers: GitHub-style globs, changed paths (renames too), which rules fire, rollback detection."""

from __future__ import annotations

import pytest

from reconciler import desired as desired_state
from reconciler.desired import RuleKind, RunRule
from reconciler.engine import gitrules
from reconciler.objects import Address
from tests.triggers.conftest import GitRepo

# (pattern, matches, does not match): GitHub's filter pattern cheat sheet, plus our edge cases.
GLOBS = [
    ("**", ["all/the/files.md", "x"], []),
    ("*.js", ["app.js", "index.js"], ["js/index.js", "app.jsx"]),
    ("**.js", ["index.js", "js/index.js", "src/js/app.js"], ["index.ts"]),
    ("docs/*", ["docs/README.md", "docs/file.txt"], ["docs/mona/octocat.txt", "docs"]),
    ("docs/**", ["docs/README.md", "docs/mona/octocat.txt"], ["docs", "other/docs/x"]),
    (
        "docs/**/*.md",
        ["docs/README.md", "docs/mona/hello-world.md", "docs/a/markdown/guide.md"],
        ["docs/a.txt"],
    ),
    ("**/docs/**", ["docs/hello.md", "dir/docs/my-file.txt", "space/docs/plan/space.doc"], ["dir/doc/x"]),
    ("**/README.md", ["README.md", "js/README.md"], ["README.mdx"]),
    ("**/*src/**", ["a/src/app.js", "my-src/code/js/app.js"], ["src"]),
    ("**/*-post.md", ["my-post.md", "path/their-post.md"], ["post.md"]),
    ("**/migrate-*.sql", ["migrate-10909.sql", "db/migrate-v1.0.sql", "db/sept/migrate-v1.sql"], ["x.sql"]),
    ("flows/etl/**", ["flows/etl/x.py", "flows/etl/a/b.py"], ["flows/etl", "flows/etl2/x.py"]),
    ("flows/*.py", ["flows/a.py"], ["flows/sub/a.py"]),
    (
        "colou?r.md",
        ["color.md", "colour.md"],
        ["colouur.md", "colotr.md"],
    ),  # ? = zero or one of the preceding
    ("v[12].txt", ["v1.txt", "v2.txt"], ["v3.txt"]),
    ("ab+c", ["abc", "abbbc"], ["ac"]),
    ("a.b(c)", ["a.b(c)"], ["axb(c)"]),  # regex characters are literal
    ("../shared/**", ["../shared/lib.py"], ["shared/lib.py"]),
]


@pytest.mark.parametrize(("pattern", "good", "bad"), GLOBS)
def test_globs_follow_githubs_filter_patterns(pattern: str, good: list[str], bad: list[str]) -> None:
    for path in good:
        assert gitrules.glob(pattern, path), (pattern, path)
    for path in bad:
        assert not gitrules.glob(pattern, path), (pattern, path)


def test_negation_the_last_matching_pattern_wins() -> None:
    patterns = ["*.md", "!README*", "README-keep.md"]
    assert gitrules.selected_by(patterns, "guide.md") == "*.md"
    assert gitrules.selected_by(patterns, "README.md") is None
    assert gitrules.selected_by(patterns, "README-keep.md") == "README-keep.md"
    assert gitrules.selected_by(["!docs/**"], "docs/x.md") is None  # only negatives select nothing


def test_branch_globs() -> None:
    assert gitrules.branch_matches([], None) == "*"  # no branches key: any branch
    assert gitrules.branch_matches(["main"], "main") == "main"
    assert gitrules.branch_matches(["main"], "refs/heads/main") == "main"
    assert gitrules.branch_matches(["main"], "main2") is None
    assert gitrules.branch_matches(["release/*"], "release/1.0") == "release/*"
    assert gitrules.branch_matches(["release/*"], "release/1.0/hotfix") is None
    assert gitrules.branch_matches(["release/**", "!release/old"], "release/old") is None
    assert gitrules.branch_matches(["main"], None) is None


def _rules(**by_deployment: list[RunRule]) -> dict[Address, tuple[RunRule, ...]]:
    return {Address.deployment(*name.split("__")): tuple(rules) for name, rules in by_deployment.items()}


def test_push_decisions_say_which_rules_fire_and_why() -> None:
    rules = _rules(
        etl__daily=[RunRule(RuleKind.PUSH, ("main",), ("flows/etl/**",)), RunRule(RuleKind.APPLY)],
        report__nightly=[RunRule(RuleKind.PUSH, (), ("flows/report/**", "!flows/report/README.md"))],
        any__branch=[RunRule(RuleKind.PUSH, ("release/*",), ())],
        watch__only=[RunRule(RuleKind.WATCH, (), ("**",))],
    )
    paths = ("flows/report/README.md", "flows/etl/x.py")
    decisions = {d.deployment: d for d in gitrules.push_decisions(rules, branch="main", paths=paths)}
    assert set(decisions) == {"etl/daily", "report/nightly", "any/branch"}  # watch/apply rules are not push
    assert decisions["etl/daily"].fired
    assert decisions["etl/daily"].reason == "push: flows/etl/** matched flows/etl/x.py on main"
    assert (
        not decisions["report/nightly"].fired and "no changed path matches" in decisions["report/nightly"].why
    )
    assert (
        not decisions["any/branch"].fired and "branch main is not in branches" in decisions["any/branch"].why
    )
    on_release = gitrules.push_decisions(rules, branch="release/2", paths=())
    assert gitrules.fired(on_release) == {"any/branch": "push: branch release/* matched release/2"}


def test_changed_paths_include_both_sides_of_a_rename(repo: GitRepo) -> None:
    c1 = repo.commit(
        "one", {"proj/flows/etl/a.py": "a = 1\n", "proj/flows/b.py": "b = 1\n", "shared/x.py": "1\n"}
    )
    c2 = repo.commit(
        "rename, delete, add, outside",
        {"proj/flows/new.py": "n = 1\n", "shared/x.py": "2\n"},
        delete=("proj/flows/b.py",),
        rename={"proj/flows/etl/a.py": "proj/flows/moved/a.py"},
    )
    with desired_state.GitRepo.open(repo.root) as git:
        changed = gitrules.changed_paths(git, base=c1, head=c2, prefix=git.prefix(repo.root / "proj"))
        every = gitrules.changed_paths(git, base=None, head=c1, prefix="")
    assert set(changed.paths) == {
        "flows/etl/a.py",  # the rename's old path: a rule on flows/etl/** still fires
        "flows/moved/a.py",
        "flows/b.py",
        "flows/new.py",
        "../shared/x.py",  # outside the project: reachable with ../ patterns
    }
    assert set(every.paths) == {"proj/flows/etl/a.py", "proj/flows/b.py", "shared/x.py"}
    rules = _rules(etl__daily=[RunRule(RuleKind.PUSH, (), ("flows/etl/**",))])
    assert gitrules.fired(gitrules.push_decisions(rules, branch="main", paths=changed.paths)) == {
        "etl/daily": "push: flows/etl/** matched flows/etl/a.py"
    }


def test_push_base_is_before_unless_pushes_were_never_applied(repo: GitRepo) -> None:
    c1 = repo.commit("one", {"a": "1"})
    c2 = repo.commit("two", {"b": "1"})
    c3 = repo.commit("three", {"c": "1"})
    zero = desired_state.ZERO_SHA
    with desired_state.GitRepo.open(repo.root) as git:
        assert gitrules.push_base(git, before=c2, after=c3, last_applied=c2)[0] == c2
        assert gitrules.push_base(git, before=c2, after=c3, last_applied=None)[0] == c2
        base, why = gitrules.push_base(git, before=c2, after=c3, last_applied=c1)  # c2's push failed
        assert base == c1 and "never applied" in why
        assert gitrules.push_base(git, before=c2, after=c3, last_applied=c3)[0] == c2  # a re-run
        assert gitrules.push_base(git, before=zero, after=c3, last_applied=c1)[0] == c1  # new branch
        assert gitrules.push_base(git, before=zero, after=c3, last_applied=None)[0] == c2  # parent
        assert gitrules.push_base(git, before="f" * 40, after=c3, last_applied=None)[0] == c2  # unknown
        base, why = gitrules.push_base(git, before=zero, after=c1, last_applied=None)
        assert base is None and "root commit" in why


def test_relation_to_the_last_applied_commit(repo: GitRepo) -> None:
    c1 = repo.commit("one", {"a": "1"})
    c2 = repo.commit("two", {"a": "2"})
    repo.checkout("-b", "side", c1)
    side = repo.commit("side", {"s": "1"})
    with desired_state.GitRepo.open(repo.root) as git:
        assert gitrules.relation(git, c2, None) is gitrules.Relation.FIRST
        assert gitrules.relation(git, c2, c2) is gitrules.Relation.SAME
        assert gitrules.relation(git, c2, c1) is gitrules.Relation.AHEAD
        assert gitrules.relation(git, c1, c2) is gitrules.Relation.BEHIND
        assert gitrules.relation(git, side, c2) is gitrules.Relation.DIVERGED
        assert gitrules.relation(git, c2, "e" * 40) is gitrules.Relation.UNKNOWN
    with pytest.raises(gitrules.RollbackRefused, match="--allow-rollback"):
        gitrules.refuse_rollback(gitrules.Relation.BEHIND, c1, c2, allow=False)
    gitrules.refuse_rollback(gitrules.Relation.BEHIND, c1, c2, allow=True)
    gitrules.refuse_rollback(gitrules.Relation.DIVERGED, side, c2, allow=False)
