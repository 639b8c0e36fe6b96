"""The README is tested: its commands run, its examples are what the tool prints.

Every ``gradio-clean …`` command in a ```sh block is run (as a dry run, with its
absolute paths moved into a sandbox), the Kubernetes manifests are valid YAML whose
command lines prune accepts, the config and cron examples are real output, and the
test command is the one CI runs.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

from gradio_clean.cli import app
from gradio_clean.errors import ExitCode
from gradio_clean.inapp import parse_options
from gradio_clean.metrics import BudgetGauge, RunMetrics, render_metrics
from tests.conftest import DAY, HOUR, SHA256_A, SHA256_B, set_age, write
from tests.helpers import only, parse_exposition, unit_settings

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
SEPARATORS = {"|", "||", "&&", ";", "&", "(", ")", "$"}
REDIRECTS = {">", ">>", "<", "<<", "2"}
PREFIXES = {"sudo", "exec", "do", "then", "else", "!"}  # a command follows these


def blocks(lang: str) -> list[str]:
    return [body for kind, body in FENCE.findall(README) if kind == lang]


def block_after(text: str) -> str:
    """The body of the first fenced block after `text` in the README."""
    match = FENCE.search(README, README.index(text))
    assert match is not None, text
    return match.group(2)


def commands() -> list[str]:
    return [c.name or "" for c in app.registered_commands]


# -- the shell blocks -------------------------------------------------------------------


def shell_lines(block: str) -> list[str]:
    """Logical lines: continuations joined, here-document bodies left out."""
    lines: list[str] = []
    pending = ""
    heredoc_end: str | None = None
    for raw in block.splitlines():
        if heredoc_end is not None:
            if raw.strip() == heredoc_end:
                heredoc_end = None
            continue
        if raw.endswith("\\"):
            pending += raw[:-1] + " "
            continue
        line, pending = pending + raw, ""
        words = tokens(line)
        if "<<" in words:
            heredoc_end = words[words.index("<<") + 1]
        lines.append(line)
    assert heredoc_end is None and not pending
    return lines


def tokens(line: str) -> list[str]:
    lex = shlex.shlex(line, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    return list(lex)


def invocations(line: str) -> list[list[str]]:
    """Each `gradio-clean ARGS` run by `line` (at a command's start), as its ARGS."""
    words = tokens(line)
    found: list[list[str]] = []
    start = True
    for i, word in enumerate(words):
        if word in SEPARATORS:
            start = True
            continue
        if start and word in PREFIXES:
            continue
        if start and os.path.basename(word) == "gradio-clean":
            args: list[str] = []
            for arg in words[i + 1 :]:
                if arg in SEPARATORS or arg in REDIRECTS:
                    break
                args.append(arg)
            found.append(args)
        start = False
    return found


SH_COMMANDS = [
    args for block in blocks("sh") for line in shell_lines(block) for args in invocations(line)
]


def test_the_readme_runs_gradio_clean_in_its_sh_blocks() -> None:
    assert len(SH_COMMANDS) >= 15
    assert {args[0] for args in SH_COMMANDS if not args[0].startswith("-")} == set(commands())


@dataclass
class Sandbox:
    """Absolute paths of the README moved under one folder, the config example in place."""

    base: Path

    def path(self, readme_path: str) -> Path:
        assert readme_path.startswith("/")
        return self.base / "fs" / readme_path.lstrip("/")

    def config(self, readme_path: str) -> Path:
        """The README's config example at `readme_path`, its roots made and moved."""
        text = block_after("The first file found wins:")
        for root in re.findall(r'"(/[^"]*)"', text):
            self.path(root).mkdir(parents=True, exist_ok=True)
            text = text.replace(f'"{root}"', f'"{self.path(root)}"')
        return write(self.path(readme_path), text.encode())

    def argv(self, args: list[str]) -> list[str]:
        """`args` as a safe dry run: paths moved, --apply and --yes dropped."""
        out: list[str] = []
        previous = ""
        for arg in args:
            if arg in ("--apply", "--yes", "-y"):
                previous = arg
                continue
            assert "$" not in arg and not arg.startswith("~"), f"cannot sandbox {arg!r}"
            if arg.startswith("/"):
                moved = self.path(arg)
                if previous == "--metrics-file":
                    moved.parent.mkdir(parents=True, exist_ok=True)
                elif previous == "--config":
                    self.config(arg)
                else:
                    moved.mkdir(parents=True, exist_ok=True)
                arg = str(moved)
            out.append(arg)
            previous = arg
        return out


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """What the walkthrough set up: the config example, in force for every command."""
    box = Sandbox(tmp_path)
    monkeypatch.setenv("GRADIO_CLEAN_CONFIG", str(box.config("/etc/gradio-clean/config.toml")))
    return box


def root_help(runner: CliRunner) -> str:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    return result.stdout


@pytest.mark.parametrize("args", SH_COMMANDS, ids=[" ".join(a) for a in SH_COMMANDS])
def test_every_sh_command_runs(runner: CliRunner, sandbox: Sandbox, args: list[str]) -> None:
    if args[0] in ("--install-completion", "--show-completion"):  # they touch the shell's files
        assert args[0] in root_help(runner)
        return
    argv = sandbox.argv(args)
    result = runner.invoke(app, argv)
    assert result.exit_code == 0, (argv, result.stdout, result.stderr)
    assert "Traceback" not in result.output


def test_every_command_is_in_the_readme_and_has_help(runner: CliRunner) -> None:
    assert commands() == ["scan", "prune", "config", "schedule"]
    for name in commands():
        assert re.search(rf"\bgradio-clean {name}\b", README), name
        assert f"## {name}" in README or f"`gradio-clean {name}`" in README, name
        result = runner.invoke(app, [name, "--help"])
        assert result.exit_code == 0, name
        assert f"Usage: gradio-clean {name} [OPTIONS]" in result.stdout


def test_the_readme_test_command_is_the_one_ci_runs() -> None:
    lines = README.splitlines()
    readme = lines[lines.index("# Install the test extras and pass the tests:") + 1]
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    marker = next(i for i, line in enumerate(ci) if line.startswith("# The README's test command"))
    assert ci[marker + 1] == readme
    assert ci.count(readme) == 1


def test_the_exit_code_table_is_exit_code() -> None:
    table = README[README.index("## Exit codes") :]
    codes = [int(c) for c in re.findall(r"^\| (\d+) \|", table, re.MULTILINE)]
    assert codes == [int(c) for c in ExitCode]


# -- the examples are real output -------------------------------------------------------


def run(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(app, list(args))


def test_the_config_example_is_what_config_prints(runner: CliRunner, tmp_path: Path) -> None:
    example = block_after("The first file found wins:")
    assert example.startswith("# /etc/gradio-clean/config.toml\n")
    cfg = write(tmp_path / "config.toml", example.encode())
    result = run(runner, "config", "--config", str(cfg))
    assert result.exit_code == 0, result.stderr
    shown = block_after("`gradio-clean config` prints the effective configuration")
    assert result.stdout.replace(str(cfg), "/etc/gradio-clean/config.toml") == shown


def test_the_config_error_example_is_what_prune_prints(runner: CliRunner, tmp_path: Path) -> None:
    shown = block_after("a one-line usage error (exit 2) naming the file").rstrip("\n")
    bad_line = re.search(r"config.toml: (\w+ = .*?): ", shown)
    assert bad_line is not None
    cfg = write(tmp_path / "config.toml", (bad_line.group(1) + "\n").encode())
    result = run(runner, "prune", "--config", str(cfg))
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr.replace(str(cfg), "/etc/gradio-clean/config.toml") == shown + "\n"


def test_the_walkthrough_config_loads(runner: CliRunner, tmp_path: Path) -> None:
    walkthrough = block_after("### From pip install to a scheduled, monitored prune")
    heredoc = re.search(r"<<'EOF'\n(.*?)^EOF$", walkthrough, re.MULTILINE | re.DOTALL)
    assert heredoc is not None
    cfg = write(tmp_path / "config.toml", heredoc.group(1).encode())
    result = run(runner, "config", "--config", str(cfg), "--json")
    assert result.exit_code == 0, result.stderr
    values = json.loads(result.stdout)["values"]
    assert values["roots"] == ["/tmp/gradio"]
    assert values["older_than"] == "7d"
    assert values["orphaned_sessions"] is True


def test_the_crontab_example_is_what_schedule_prints(runner: CliRunner, tmp_path: Path) -> None:
    sandbox = Sandbox(tmp_path)  # no config file: the example has none
    command = block_after("### cron: `gradio-clean schedule`").strip()
    (args,) = invocations(command)
    result = run(runner, *sandbox.argv(args))
    assert result.exit_code == 0, result.stderr
    exe = shlex.split(result.stdout.split(" ", 5)[5])[0]
    shown = block_after("prints one crontab line:")
    printed = result.stdout.replace(str(sandbox.path("/")) + "/", "/")
    assert printed.replace(exe, "/opt/gradio-clean/bin/gradio-clean") == shown


def test_the_systemd_install_command_writes_both_units(
    runner: CliRunner, sandbox: Sandbox, tmp_path: Path
) -> None:
    block = block_after("### systemd: `gradio-clean schedule --systemd`")
    line = next(line for line in shell_lines(block) if "| awk" in line)
    (args,) = invocations(line)
    program = tokens(line.split("| awk", 1)[1])[0]
    result = run(runner, *sandbox.argv(args))
    assert result.exit_code == 0, result.stderr
    units = tmp_path / "etc-systemd-system"
    units.mkdir()
    here = str(units) + "/"
    awk = shutil.which("awk")
    if awk is None:
        pytest.skip("awk is not installed")
    subprocess.run(
        [awk, program.replace(r"\/etc\/systemd\/system\/", here.replace("/", r"\/"))],
        input=result.stdout.replace("/etc/systemd/system/", here),
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert sorted(os.listdir(units)) == ["gradio-clean.service", "gradio-clean.timer"]
    service = (units / "gradio-clean.service").read_text()
    timer = (units / "gradio-clean.timer").read_text()
    assert service.replace(here, "/etc/systemd/system/") + timer.replace(
        here, "/etc/systemd/system/"
    ) == result.stdout.replace(here, "/etc/systemd/system/")
    assert only(unit_settings(service)["Service"], "Type") == "oneshot"
    assert only(unit_settings(timer)["Timer"], "OnUnitActiveSec") == "6h"
    assert only(unit_settings(timer)["Install"], "WantedBy") == "timers.target"
    assert "systemctl enable --now gradio-clean.timer" in block


def test_the_metrics_table_names_every_metric_written() -> None:
    gauge = BudgetGauge("max-size", "", 1, 2, 1)  # budget metrics: with a budget rule only
    text = render_metrics(RunMetrics({}, {}, 0, 0, 1.0, True, 1.0, budget=(gauge,)))
    written = {name for name, _ in parse_exposition(text).samples}
    section = README[README.index("### Metrics for Prometheus") :]
    section = section[: section.index("\n### ")]
    assert set(re.findall(r"`(gradio_clean_\w+)`", section)) == written
    for block in blocks("yaml"):
        for name in re.findall(r"\bgradio_clean_\w+", block):
            assert name in written, name


def test_the_scan_json_example_has_the_keys_scan_prints(runner: CliRunner, tmp_path: Path) -> None:
    example = json.loads(block_after("One document on stdout; warnings also go to stderr."))
    write(tmp_path / "gradio" / SHA256_A / "image.png", b"png")
    result = run(runner, "scan", "--json", str(tmp_path / "gradio"))
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert list(example) == list(doc)
    (fs,) = example["filesystems"]
    assert list(fs) == list(doc["filesystems"][0])
    assert fs["roots_share"] == fs["roots_disk_bytes"] / fs["size_bytes"]
    fields = README.split("`filesystems` has one entry", 1)[1].split("\n\n", 2)[1]
    assert [row.split("`")[1] for row in fields.splitlines()[2:]] == list(fs)


def test_the_quiet_example_has_the_shape_quiet_prints() -> None:
    # The exact text: test_cli.py::test_quiet_prints_what_it_left_on_stderr_and_exits_3.
    lines = block_after("### Quiet mode").splitlines()
    assert re.fullmatch(r"skipped: /\S+: open by process \d+ \(\w+\)", lines[0])
    assert re.fullmatch(
        r"Freed [\d.]+ [KMGT]?i?B(ytes?)? in (1 file|\d+ files) \((1 folder|\d+ folders)\)\.",
        lines[1],
    )
    assert re.fullmatch(
        r"(1 entry|\d+ entries) skipped, \d+ failed; see above or --json\.", lines[2]
    )


# -- Kubernetes ------------------------------------------------------------------------


def yaml_documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for block in blocks("yaml"):
        loaded = list(yaml.safe_load_all(block))
        assert loaded and all(isinstance(d, dict) for d in loaded), block[:80]
        docs += loaded
    return docs


def manifests(kind: str) -> list[dict[str, Any]]:
    return [d for d in yaml_documents() if d.get("kind") == kind]


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    if doc["kind"] == "CronJob":
        spec: dict[str, Any] = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    else:
        spec = doc["spec"]["template"]["spec"]
    return spec


def container_runs(container: dict[str, Any]) -> list[list[str]]:
    """The gradio-clean ARGS a container runs, directly or through `sh -c`."""
    argv = [*container.get("command", []), *container.get("args", [])]
    assert all(isinstance(a, str) for a in argv), "every argv item must be a YAML string"
    if argv[:2] == ["sh", "-c"]:
        return invocations(argv[2])
    return [argv[1:]] if argv and argv[0] == "gradio-clean" else []


def test_the_yaml_blocks_are_valid_yaml() -> None:
    kinds = [d.get("kind") for d in yaml_documents()]
    assert kinds.count("CronJob") == 1
    assert "Deployment" in kinds


def test_the_cronjob_mounts_the_gradio_cache_and_forbids_overlap() -> None:
    (cron,) = manifests("CronJob")
    assert cron["apiVersion"] == "batch/v1"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    spec = pod_spec(cron)
    (container,) = spec["containers"]
    assert {"name": "GRADIO_TEMP_DIR", "value": "/cache"} in container["env"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes[mounts["/cache"]]["persistentVolumeClaim"] == {"claimName": "gradio-cache"}
    assert "emptyDir" in volumes[mounts["/tmp"]]  # a read-only root file system has no /tmp
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["securityContext"]["runAsNonRoot"] is True
    (args,) = container_runs(container)
    assert args[:2] == ["prune", "/cache"]
    assert {"--apply", "--quiet"} <= set(args)
    metrics_file = args[args.index("--metrics-file") + 1]
    assert os.path.dirname(metrics_file) in mounts  # written to a mounted volume


def cache_tree(cache: Path) -> list[tuple[str, str]]:
    """A stand-in for /cache: what the README's rules plan there."""
    old = write(cache / SHA256_A / "upload.png", b"o" * 100, age=10 * DAY)
    set_age(old.parent, 10 * DAY)
    write(cache / SHA256_B / "fresh.png", b"f" * 100)
    write(cache / "tmpab12cd34", b"", age=7 * HOUR)
    return [
        (str(old.parent), "older-than"),
        (str(cache / "tmpab12cd34"), "orphaned-sessions"),
    ]


CONTAINERS = [
    (doc["kind"], c["name"], args)
    for doc in yaml_documents()
    if "spec" in doc
    for c in pod_spec(doc)["containers"]
    for args in container_runs(c)
]


@pytest.mark.parametrize(
    ("kind", "name", "args"), CONTAINERS, ids=[f"{k}/{n}" for k, n, _ in CONTAINERS]
)
def test_the_manifests_command_lines_are_accepted_by_prune(
    runner: CliRunner, tmp_path: Path, kind: str, name: str, args: list[str]
) -> None:
    cache = tmp_path / "cache"
    expected = cache_tree(cache)
    before = sorted(p for p in cache.rglob("*"))
    argv: list[str] = []
    for arg in args:
        if arg == "--apply":
            continue
        if arg == "/cache":
            arg = str(cache)
        elif arg.startswith("/"):  # the metrics file, on its own mounted volume
            arg = str(tmp_path / arg.lstrip("/"))
            Path(arg).parent.mkdir(parents=True, exist_ok=True)
        argv.append(arg)
    # utime cannot age a ctime: the stand-in's ages are mtimes
    result = run(runner, *argv, "--age-by", "mtime", "--json")
    assert result.exit_code == 0, (argv, result.stderr)
    doc = json.loads(result.stdout)
    assert doc["dry_run"] is True
    assert [(a["path"], a["rule"]) for a in doc["actions"]] == expected
    assert sorted(p for p in cache.rglob("*")) == before
    if "--metrics-file" in args:
        prom = tmp_path / args[args.index("--metrics-file") + 1].lstrip("/")
        assert parse_exposition(prom.read_text()).value("gradio_clean_success") == 1


def test_every_attach_call_in_the_readme_is_accepted() -> None:
    """The `attach(demo, …)` examples, in code blocks and in the text, parse as attach()
    parses its keywords: no example uses a keyword or a value it would refuse."""
    calls = re.findall(r"attach\(demo, [^()\n]*\)", README)
    assert any("max_size=" in c for c in calls), calls  # the Space example's budget
    for call in calls:
        node = ast.parse(call).body[0]
        assert isinstance(node, ast.Expr) and isinstance(node.value, ast.Call), call
        kwargs = {k.arg: ast.literal_eval(k.value) for k in node.value.keywords if k.arg}
        every, grace = kwargs.pop("every", "30m"), kwargs.pop("grace", "60s")
        parse_options(every, grace, kwargs.pop("sessions_dirs", ()), None, kwargs)
