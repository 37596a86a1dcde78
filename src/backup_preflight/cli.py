"""Command line: argument parsing and exit codes only; the work happens in the pipeline stages.

Exit codes: 0 no failing finding at or above --fail-on; 1 failing findings; 2 usage or input
error; 3 incomplete (some scope not collected, or nothing evaluated); 4 internal error (a bug, or
the environment failing mid-run such as a full disk), one line, the traceback only with --debug.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import re
import signal
import sys
import traceback
from datetime import datetime
from pathlib import Path
from typing import Any

from backup_preflight import __version__, logs, workers
from backup_preflight.atomic import check_target
from backup_preflight.collect.auth import AUTH_METHODS, CollectError
from backup_preflight.errors import InputError, Interrupted
from backup_preflight.estate.parts import PART_VMS, part_vms
from backup_preflight.findings import SEVERITIES
from backup_preflight.results import EXIT_FAILING, EXIT_INCOMPLETE, EXIT_INPUT, EXIT_INTERNAL, EXIT_OK, Gate
from backup_preflight.snapshot import DEFAULT_MAX_INPUT, LIMITS
from backup_preflight.text import InertStream

_SIZE = re.compile(r"(?i)\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*")


def _size(text: str) -> int:
    """`--max-input-size` value: bytes, or with a binary unit (500M, 4GiB)."""
    m = _SIZE.fullmatch(text)
    if not m or float(m[1]) <= 0:
        raise argparse.ArgumentTypeError(f"expected a size like 4GiB or 500M, found {text!r}")
    return int(float(m[1]) * (1024 ** ("kmgt".index(m[2].lower()) + 1) if m[2] else 1))


def _whole(text: str, unit: str, least: int, other: str = "") -> int:
    if not text.strip().isdigit() or int(text) < least:
        raise argparse.ArgumentTypeError(f"expected {other}a whole number of {unit} ({least} or more), found {text!r}")
    return int(text)


def _count(text: str) -> int:
    """`--part-size` value: a whole number of VMs, 0 or more."""
    return _whole(text, "VMs", 0)


def _annotations(text: str) -> int:
    """`--ci-annotations` value: a whole number of annotations of each kind, 0 (none) or more."""
    return _whole(text, "annotations", 0)


def _jobs(text: str) -> int:
    """`--jobs` value: a whole number of jobs at once (parts judged, reports written), 1 or more, or `auto`
    (workers.auto_jobs); more than one needs fork (Linux, macOS)."""
    if text.strip().lower() == "auto":
        return workers.auto_jobs()
    jobs = _whole(text, "jobs at once", 1, "auto or ")
    if jobs > 1 and "fork" not in multiprocessing.get_all_start_methods():
        raise argparse.ArgumentTypeError("more than one job forks child processes (a part or reports each), which "
                                         "this platform cannot do")
    return jobs


def _shard_name(text: str) -> str:
    """`--shard-name` value: a name that is not blank (an empty one was accepted and then not recorded at all)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a name for this shard, found {text!r}")
    return text


def _part_size(args: argparse.Namespace) -> int:
    """`--part-size`, or by default the jobs' share of PART_VMS (estate.parts.part_vms)."""
    return int(args.part_size) if args.part_size is not None else part_vms(args.jobs)


def _live_flags(parser: argparse.ArgumentParser) -> None:
    live = parser.add_argument_group("live collection from Azure")
    live.add_argument("--subscription", action="append", default=[], metavar="ID",
                      help="subscription to collect (repeatable)")
    live.add_argument("--management-group", action="append", default=[], metavar="ID",
                      help="management group to collect (repeatable)")
    live.add_argument("--auth", choices=AUTH_METHODS, default="default",
                      help="azure-identity credential to use (default: DefaultAzureCredential)")
    live.add_argument("--arm-endpoint", metavar="URL",
                      help="Resource Manager endpoint for sovereign clouds; TLS trust follows REQUESTS_CA_BUNDLE")
    live.add_argument("--no-instance-view", action="store_true",
                      help="skip the Compute instance view (agent and extension status become unknown)")
    live.add_argument("--no-metrics", action="store_true",
                      help="skip Azure Monitor metrics (CPU and memory pressure at backup time become unknown)")
    live.add_argument("--metrics-days", type=_metrics_days, default=7, metavar="N",
                      help="days of hourly CPU and memory metrics to read, 1-93 (default 7)")
    live.add_argument("--metrics-endpoint", metavar="URL",
                      help="send every region's metrics batches to this endpoint (proxy, private link) instead of "
                           "https://<region>.metrics.monitor.azure.com")

    live.add_argument("--probe-guest", action="store_true",
                      help="run the in-guest probe on running VMs through Run Command (runs code in the guests; "
                           "needs Microsoft.Compute/virtualMachines/runCommand/action)")
    live.add_argument("--probe-storage-host", metavar="HOST",
                      help="with --probe-guest: Storage host the probe connects to on 443, {region} is replaced "
                           "by the VM's region (default: Storage reachability is not tested)")
    live.add_argument("--probe-timeout", type=float, default=600.0, metavar="SECONDS",
                      help="with --probe-guest: give up on a VM's probe after this long (default 600)")
    live.add_argument("--probe-parallel", type=int, default=5, metavar="N",
                      help="with --probe-guest: commands in flight per subscription (default 5)")


def _metrics_days(text: str) -> int:
    """--metrics-days: whole days, at most the 93 that Azure Monitor keeps platform metrics for."""
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of days: {text!r}") from None
    if not 1 <= days <= 93:
        raise argparse.ArgumentTypeError(f"must be between 1 and 93, got {days}")
    return days


def _policy_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policies", action="append", type=Path, metavar="DIR",
                        help="policy folder or file (repeatable; default: the bundled catalog)")
    _add_policies_flag(parser)
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="override a policy parameter; POLICY-ID.NAME=VALUE for one policy")
    parser.add_argument("--parameters", type=Path, metavar="FILE",
                        help="JSON file of parameter values, {name: value}")


def _add_policies_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--add-policies", action="append", default=[], type=Path, metavar="DIR",
                        help="your own policy folder or file, evaluated with the catalog (repeatable; "
                             "ids must not clash)")


def _global_flags(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """Accepted before or after the subcommand; after it, an absent flag must not reset one given before."""
    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    out = parser.add_argument_group("console and configuration")
    out.add_argument("-q", "--quiet", action="store_true", default=default(False),
                     help="no progress or log lines on stderr, only warnings and errors")
    out.add_argument("-v", "--verbose", action="store_true", default=default(False),
                     help="more log lines: the retries and quota waits of a live collection, each part of a scan "
                          "judged in parts")
    out.add_argument("--config", type=Path, metavar="FILE", default=default(None),
                     help="configuration file (default: ./backup-preflight.toml, or [tool.backup-preflight] "
                          "in ./pyproject.toml)")
    out.add_argument("--debug", action="store_true", default=default(False),
                     help="HTTP logging of live collection; on an internal error (exit 4), the traceback too")
    out.add_argument("--max-input-size", type=_size, default=default(DEFAULT_MAX_INPUT), metavar="SIZE",
                     help="largest JSON input once gunzipped (default 4GiB); a bigger one is an input error")


def _report_flags(parser: argparse.ArgumentParser) -> None:
    """Where the reports go, the gate and the review, and the CI forms: shared by `scan` and `merge`."""
    parser.add_argument("--output-dir", type=Path, default=Path("reports"), metavar="DIR",
                        help="where reports are written (default: reports)")
    parser.add_argument("--fail-on", choices=(*SEVERITIES, "never"), default="high",
                        help="exit 1 when a finding at or above this severity fails (default: high)")
    parser.add_argument("--strict", action="store_true", help="unknown findings count as failing")
    parser.add_argument("--exemptions", type=Path, metavar="FILE",
                        help="JSON exemptions file (see docs/reports.md); exempt findings keep their verdict")
    parser.add_argument("--baseline", type=Path, metavar="RESULTS_JSON",
                        help="results.json of an earlier scan: mark findings new/unchanged, list fixed ones")
    parser.add_argument("--fail-on-new", action="store_true",
                        help="with --baseline: only findings the baseline did not have break the gate")
    parser.add_argument("--junit-passes", choices=("aggregate", "each", "none"), default="aggregate",
                        help="passing (policy, VM) pairs in junit.xml: one testcase per policy (default), "
                             "one per VM, or none; results.json always has every one")
    parser.add_argument("--junit-unknowns", choices=("auto", "aggregate", "each"), default="auto",
                        help="unknown (skipped) pairs in junit.xml: auto (default) one testcase per VM for a reason "
                             "that concerns at most 50 VMs of a policy, one per reason beyond; aggregate: always "
                             "one per policy and reason; each: always one per VM; under --strict they are "
                             "failures, one per VM")
    parser.add_argument("--ci", choices=("auto", "github", "azure-devops", "none"), default="auto",
                        help="CI integration: annotations and the job summary on GitHub Actions / Azure DevOps "
                             "(default auto: from GITHUB_ACTIONS / TF_BUILD)")
    parser.add_argument("--ci-annotations", type=_annotations, default=10, metavar="N",
                        help="at most N error and N warning annotations in CI (default 10)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="backup-preflight",
        description="Check Azure VMs for the preconditions of Azure Backup's snapshot step.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _global_flags(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    scan = sub.add_parser("scan", help="evaluate policies and write reports")
    src = scan.add_argument_group("sources (choose one kind)")
    src.add_argument("--demo", action="store_true", help="scan the built-in demo estate")
    src.add_argument("--snapshot", action="append", default=[], type=Path, metavar="FILE",
                     help="snapshot or `az graph query` JSON (.json/.json.gz); repeatable, merged")
    _live_flags(scan)
    _policy_flags(scan)
    _report_flags(scan)
    scan.add_argument("--service-tags", type=Path, metavar="FILE",
                      help="Microsoft's service-tag JSON (ServiceTags_Public_*.json or `az network list-service-tags`):"
                           " decides NSG rules and routes on public CIDRs against the Storage tag exactly")
    scan.add_argument("--what-if", action="append", default=[], type=Path, metavar="FILE", dest="what_if",
                      help="ARM/Bicep what-if JSON (az deployment ... what-if --no-pretty-print), repeatable: "
                           "judge the estate as the deployment would leave it; only new failures break the gate")
    scan.add_argument("--shard-name", type=_shard_name, metavar="NAME",
                      help="this run is one part of a split estate (a CI matrix job): record it for `merge`")
    scan.add_argument("--part-size", type=_count, metavar="VMS",
                      help=f"judge a larger snapshot file or live collection a part of about this many VMs at a "
                           f"time, to bound memory "
                           f"(default {PART_VMS:,} divided among the jobs: {PART_VMS // 2:,} each with two; 0 holds "
                           f"the estate whole); the results are the same")
    scan.add_argument("--jobs", type=_jobs, default="auto", metavar="N",
                      help=f"judge up to N parts at once, each in a child process, and write up to N reports at "
                           f"once where memory allows; with more than one, a large snapshot file is also read by two "
                           f"processes; 1 reads, judges and writes one at a time, in this process (default "
                           f"auto: the CPUs this process may use, at most {workers.AUTO_JOBS}, on Linux; 1 elsewhere); "
                           f"the results are the same")

    merge = sub.add_parser("merge", help="join the results.json of shards (scan --shard-name) into one scan's reports")
    merge.add_argument("results", nargs="+", type=Path, metavar="RESULTS_JSON",
                       help="each shard's results.json, in the order their snapshots would be given to one scan")
    _report_flags(merge)
    merge.add_argument("--jobs", type=_jobs, default="auto", metavar="N",
                       help=f"write up to N reports at once where memory allows, each in a child process; 1 writes "
                            f"one at a time, in this process (default auto: the CPUs this process may use, at most "
                            f"{workers.AUTO_JOBS}, on Linux; 1 elsewhere); the reports are the same")

    verify = sub.add_parser("verify", help="re-evaluate a snapshot and confirm a results.json matches it")
    verify.add_argument("--snapshot", action="append", required=True, type=Path, metavar="FILE",
                        help="the snapshot file(s) the results were produced from")
    verify.add_argument("--results", type=Path, required=True, metavar="RESULTS_JSON")
    _policy_flags(verify)
    verify.add_argument("--exemptions", type=Path, metavar="FILE",
                        help="the exemptions file the results were produced with, if any")
    verify.add_argument("--what-if", action="append", default=[], type=Path, metavar="FILE", dest="what_if",
                        help="the what-if file(s) the results were produced with, if any (checked by SHA-256)")
    verify.add_argument("--service-tags", type=Path, metavar="FILE",
                        help="the service-tag file the results were produced with, if any")

    collect = sub.add_parser("collect", help="collect a snapshot from Azure")
    _live_flags(collect)
    _policy_flags(collect)  # the rows of every resourceGraphQuery policy are collected too
    collect.add_argument("--output", type=Path, required=True, metavar="FILE",
                         help="snapshot file to write (.json or .json.gz)")

    policies = sub.add_parser("policies", help="list the policy catalog")
    _policy_flags(policies)
    policies.add_argument("--format", choices=("table", "markdown", "json"), default="table")

    validate = sub.add_parser("validate", help="check policy files and report every problem")
    validate.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                          help="policy files or folders (default: the bundled catalog)")
    _add_policies_flag(validate)
    validate.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    validate.add_argument("--parameters", type=Path, metavar="FILE")

    schema = sub.add_parser("schema", help="print a JSON Schema shipped with the tool")
    schema.add_argument("name", choices=("results", "snapshot", "exemptions", "policy", "facts"))

    demo = sub.add_parser("demo-estate", help="write a synthetic snapshot of N VMs")
    demo.add_argument("--vms", type=int, required=True, metavar="N")
    demo.add_argument("--output", type=Path, required=True, metavar="FILE")
    demo.add_argument("--seed", type=int, default=7, metavar="S")
    demo.add_argument("--collected-at", type=_instant, metavar="TIME",
                      help="when the estate is collected, e.g. 2026-07-15T06:00:00Z (daylight saving follows; "
                           "default: a November morning drawn from the seed)")

    probe = sub.add_parser("probe-script", help="print the in-guest probe script, to run with your own tools")
    probe.add_argument("--os", choices=("linux", "windows"), required=True, dest="os_name",
                       help="linux: POSIX sh; windows: PowerShell")

    completion = sub.add_parser("completion", help="print a shell completion script (generated from this parser)")
    completion.add_argument("shell", choices=("bash", "zsh", "tcsh"))
    for subparser in sub.choices.values():
        _global_flags(subparser, suppress=True)
    return parser


def _instant(text: str) -> datetime:
    """An ISO 8601 time with a zone (Z or an offset), for --collected-at."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a time zone (Z or +HH:MM): {text!r}")
    return moment


def main(argv: list[str] | None = None) -> int:
    # Console text is untrusted (VM names, Azure error messages): every line out is made inert and
    # redacted, and a reader that goes away (`| head`) ends output quietly, not the run.
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = InertStream(out), InertStream(err)
    try:
        return _run(argv)
    finally:
        sys.stdout, sys.stderr = out, err


def _run(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    LIMITS.max_input_size = args.max_input_size
    try:
        _configure(args, argv)
        return COMMANDS[args.command](args, parser)
    except InputError as exc:
        for problem in exc.problems:
            print(f"backup-preflight: error: {problem}", file=sys.stderr)
        return EXIT_INPUT
    except CollectError as exc:  # nothing could be collected at all: no token, unreachable endpoint
        print(f"backup-preflight: error: nothing collected: {exc}", file=sys.stderr)
        return EXIT_INCOMPLETE
    except (KeyboardInterrupt, Interrupted) as exc:
        signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
        print(f"backup-preflight: interrupted by {signal.Signals(signum).name}; no new reports were published",
              file=sys.stderr)
        return 128 + signum
    except Exception as exc:  # a bug, or the environment failing mid-run (a full disk): never exit 1
        if args.debug:
            traceback.print_exc(file=sys.stderr)
        print(f"backup-preflight: internal error: {describe_failure(exc)}"
              + ("" if args.debug else " (run again with --debug for the traceback)"), file=sys.stderr)
        return EXIT_INTERNAL


def describe_failure(exc: BaseException) -> str:
    """One line: what failed and where (the innermost frame of ours, or the last one)."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "backup_preflight" in f.filename] or frames
    where = ""
    if ours:
        frame = ours[-1]
        name = frame.filename.split("backup_preflight", 1)[-1].lstrip("/\\")
        where = f" at {name or frame.filename}:{frame.lineno} in {frame.name}"
    if isinstance(exc, OSError) and exc.strerror:
        what = f"{exc.strerror}" + (f": {exc.filename}" if exc.filename else "")
    else:
        what = f"{type(exc).__name__}: {exc}"
    return " ".join((what + where).split())  # one line, whatever the message holds


def _configure(args: argparse.Namespace, argv: list[str] | None) -> None:
    """Apply the configuration file (flags win), then route progress and logs as the flags ask."""
    from backup_preflight import config

    args.configuration = config.resolve(args, build_parser, argv, Path())
    logs.setup(quiet=args.quiet, verbose=args.verbose, debug=getattr(args, "debug", False))


def _setting(args: argparse.Namespace, key: str) -> str:
    """A setting as a usage error names it: its flag, or its key and the configuration file that set it, which
    the command line did not show."""
    configuration = args.configuration or {}
    if key in configuration.get("fromFile", ()):
        return f"{key} (set in {configuration['file']})"
    return f"--{key}"


def _load_policies(args: argparse.Namespace, sources: list[Path] | None) -> Any:
    from backup_preflight.policy.loader import bundled_policy_dir, load_policies
    from backup_preflight.policy.parameters import load_params_file, parse_cli_params

    overrides = load_params_file(args.parameters) if args.parameters else {}
    overrides.update(getattr(args, "config_params", {}))  # the config file's [param] table
    overrides.update(parse_cli_params(args.param))
    added = getattr(args, "add_policies", [])
    return load_policies([*(sources or [bundled_policy_dir()]), *added], overrides)


def _collect_options(args: argparse.Namespace, policy_set: Any) -> Any:
    from backup_preflight.collect import CollectOptions, ProbeSettings

    return CollectOptions(subscriptions=args.subscription, management_groups=args.management_group,
                          auth=args.auth, arm_endpoint=args.arm_endpoint,
                          instance_view=not args.no_instance_view, progress=logs.is_live(),
                          metrics=not args.no_metrics, metrics_days=args.metrics_days,
                          metrics_endpoint=args.metrics_endpoint,
                          custom_queries=[p.query for p in policy_set.policies if p.query],
                          probe=ProbeSettings(storage_host=args.probe_storage_host, timeout=args.probe_timeout,
                                              per_subscription=args.probe_parallel) if args.probe_guest else None,
                          compact_rows=True)  # written out (collect) or set aside or materialized (scan.live_source)


def cmd_scan(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from backup_preflight.report import outputs

    live = bool(args.subscription or args.management_group)
    kinds = sum([args.demo, bool(args.snapshot), live])
    if kinds != 1:
        parser.error("scan needs exactly one source: --demo, --snapshot FILE, or "
                     "--subscription/--management-group")
    if args.fail_on_new and not (args.baseline or args.what_if):
        parser.error(f"{_setting(args, 'fail-on-new')} needs --baseline RESULTS_JSON (or --what-if, which implies it)")
    if args.what_if and args.baseline:
        parser.error("--what-if compares with the current estate itself; it cannot be combined with "
                     f"{_setting(args, 'baseline')}")
    with outputs.claim(args.output_dir) as staged:  # exit 2 now, before the scan, if DIR cannot take reports
        return _scan(args, staged)


def _scan(args: argparse.Namespace, staged: Any) -> int:
    from backup_preflight import scan
    from backup_preflight.report import console, outputs

    policies = _load_policies(args, args.policies)
    review = _load_review(args)
    log = logging.getLogger("backup_preflight.scan")
    tags = _load_service_tags(args)
    what_if = None
    if args.what_if:
        from backup_preflight.whatif import load_what_ifs

        what_if = load_what_ifs(args.what_if)
    if args.probe_guest and not (args.subscription or args.management_group):
        log.warning("--probe-guest runs only with a live source (--subscription/--management-group); ignored")
    if args.demo:
        with logs.phase(log, "generating the demo estate"):
            source = scan.demo_source()
    elif args.snapshot:
        with logs.phase(log, f"reading {len(args.snapshot)} snapshot file(s)"):
            source = scan.snapshot_source(args.snapshot, _part_size(args), args.jobs)
    else:
        from backup_preflight.collect import collect_snapshot

        source = scan.live_source(collect_snapshot(_collect_options(args, policies)), _part_size(args))
    source.service_tags = tags
    source.jobs = args.jobs
    gate = Gate(fail_on=args.fail_on, strict=args.strict, fail_on_new=args.fail_on_new or bool(what_if))
    with logs.phase(log, f"building the estate and evaluating {len(policies.policies)} policies"):
        result = scan.run_scan(source, policies, gate, review, what_if=what_if, shard=args.shard_name)
    result.run["configuration"] = args.configuration
    with logs.phase(log, f"writing the reports to {args.output_dir}"):
        written = outputs.write_set(result, staged, args.junit_passes, args.junit_unknowns, args.jobs)
    console.render(result, sys.stdout)
    print(f"\nReports: {', '.join(str(p) for p in written)}")
    _ci(args, result, args.output_dir / "summary.md")
    return result.exit_code


def cmd_merge(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from backup_preflight.report import console, outputs
    from backup_preflight.review import merge

    if args.fail_on_new and not args.baseline:
        parser.error(f"{_setting(args, 'fail-on-new')} needs --baseline RESULTS_JSON")
    with outputs.claim(args.output_dir) as staged:  # exit 2 now, before reading, if DIR cannot take reports
        review = _load_review(args)
        gate = Gate(fail_on=args.fail_on, strict=args.strict, fail_on_new=args.fail_on_new)
        result = merge.merge(merge.load_shards(args.results), gate, review,
                             (args.configuration or {}).get("settings"))
        written = outputs.write_set(result, staged, args.junit_passes, args.junit_unknowns, args.jobs)
    console.render(result, sys.stdout)
    print(f"\nReports: {', '.join(str(p) for p in written)}")
    _ci(args, result, args.output_dir / "summary.md")
    return result.exit_code


def _ci(args: argparse.Namespace, result: Any, summary: Path) -> None:
    import os

    from backup_preflight.report import ci

    platform = ci.detect(args.ci, os.environ)
    if platform != "none":
        sys.stdout.flush()
        out = sys.stdout.commands() if isinstance(sys.stdout, InertStream) else sys.stdout
        ci.emit(result, platform, summary, out, os.environ, args.ci_annotations)


def _load_review(args: argparse.Namespace) -> Any:
    """Read exemptions and baseline before anything runs, so a bad file stops the scan with exit 2."""
    from backup_preflight.review import Review, baseline, exemptions

    return Review(exemptions=exemptions.load(args.exemptions) if args.exemptions else None,
                  baseline=baseline.load(args.baseline) if getattr(args, "baseline", None) else None,
                  fail_on_new=getattr(args, "fail_on_new", False))


def _load_service_tags(args: argparse.Namespace) -> Any:
    """Read the service-tag file before anything runs, so a bad file stops with exit 2."""
    from backup_preflight import service_tags

    return service_tags.load(args.service_tags) if args.service_tags else None


def cmd_verify(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from backup_preflight.review import verify
    from backup_preflight.review.baseline import load_results
    from backup_preflight.whatif import load_what_ifs

    doc, _ = load_results(args.results)  # read once, and first: any other file is "not a results.json"
    if not args.param and not args.parameters:
        args.parameters = args.results  # the parameter values the results recorded (scan.parameters)
    what_if = load_what_ifs(args.what_if) if args.what_if else None
    report = verify.verify(args.results, args.snapshot, _load_policies(args, args.policies), _load_review(args),
                           what_if, _load_service_tags(args), doc=doc)
    sys.stdout.write(report.render())
    return EXIT_OK if report.matches else EXIT_FAILING


def cmd_collect(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from backup_preflight import snapshot
    from backup_preflight.collect import collect_snapshot

    if not (args.subscription or args.management_group):
        parser.error("collect needs --subscription or --management-group")
    check_target(args.output, f"--output {args.output}")  # before the collection, which may take hours
    snap = collect_snapshot(_collect_options(args, _load_policies(args, args.policies)))
    digest = snapshot.save(snap, args.output)
    rows = sum(len(r) for r in snap.tables.values())
    print(f"Wrote {args.output}: {rows} rows, {len(snap.errors)} scope errors, sha256 {digest}")
    for error in snap.errors:
        print(f"  not collected: {error.get('scope')} [{error.get('table')}]: {error.get('message')}")
    return EXIT_INCOMPLETE if snap.errors else EXIT_OK


def cmd_policies(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from backup_preflight.report import catalog

    policy_set = _load_policies(args, args.policies)
    sys.stdout.write(catalog.render(policy_set, args.format))
    return EXIT_OK


def cmd_validate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    policy_set = _load_policies(args, args.paths)
    print(f"{len(policy_set.policies)} policies valid")
    return EXIT_OK


def cmd_completion(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import shtab

    sys.stdout.write(shtab.complete(parser, shell=args.shell))
    return EXIT_OK


def cmd_probe_script(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from backup_preflight import probes

    sys.stdout.write(probes.script(args.os_name))
    return EXIT_OK


def cmd_demo_estate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from backup_preflight import demo

    if args.vms < 1:
        parser.error("--vms must be at least 1")
    check_target(args.output, f"--output {args.output}")
    demo.write(args.vms, args.seed, args.output, args.collected_at)
    print(f"Wrote {args.output}: {args.vms} VMs (seed {args.seed})")
    return EXIT_OK


def cmd_schema(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from backup_preflight.report import schemas

    sys.stdout.write(schemas.text(args.name))
    return EXIT_OK


COMMANDS = {
    "scan": cmd_scan,
    "collect": cmd_collect,
    "policies": cmd_policies,
    "validate": cmd_validate,
    "demo-estate": cmd_demo_estate,
    "verify": cmd_verify,
    "merge": cmd_merge,
    "completion": cmd_completion,
    "schema": cmd_schema,
    "probe-script": cmd_probe_script,
}
