"""Build the book: execute the chapter notebooks with papermill under a profile, then check the HTML.

    python -m gvcf.book run --profile book            # notebooks/*.ipynb -> book/chapters/*.ipynb
    python -m gvcf.book run --profile book --notebooks 02_guided_fusion --force
    python -m gvcf.book params --profile paper 03_variance_corrected_fusion
    python -m gvcf.book check                         # after `jupyter-book build .`

A profile is ``book/profiles/<name>.yml`` (or any YAML file, ``--profile path/to/mine.yml``):
``{common: {...}, <notebook stem>: {...}}``. A chapter gets ``common`` updated by its own section, plus
``profile=<name>`` (a file's stem). A key that no notebook declares (in a chapter's section: that its notebook
does not declare) is refused before anything runs. Parameters whose name ends in ``_dir`` and whose value is a
relative path are resolved against the repository root, so they mean the same thing whatever the kernel's
working directory (the notebook's folder, as under nbval).

Runs are resumable: each executed chapter has ``<stem>.run.json`` beside it recording the hash of the
source notebook and the parameters; a chapter whose output exists and whose hash is unchanged is skipped.
Output is written to ``<stem>.partial.ipynb`` and renamed when the notebook has run to the end.

The executed copy is then prepared for the page (gvcf.book.render): code cells folded (``hide-input``), the
parameters cells left off (``remove-cell``) and a table of the build's settings put in their place. At the end the
seconds per stage (and generation's per method and sampler) and the claim verdicts of the executed chapters are
printed. Under the profile ``book`` the run then publishes (gvcf.book.publish): the tally to ``book/tally.json``, every
claim line to the table the intro page includes (``book/claims.md``), their forest plot to
``book/figures/claims_forest.png`` and chapter 1's Fig. 1, which the chapter saved under its results_dir, to
``book/figures/overview.png`` (the README's picture). These four files are the published record, committed; they are
the only files a run writes outside the executed chapters' folder and results/, and no notebook writes into the
checkout. ``check`` (gvcf.book.html_check) reports a chapter page whose code is shown unfolded (but for the cells a
chapter shows on purpose) or that lacks the settings table.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import sys
import time
from pathlib import Path

from ..engine.stages import STAGE_LOG_ENV, read_log
from . import render
from .html_check import BUILD_DIR, check_html   # `check` (and book.check_html for callers of this module)
from .profile import print_stages
from .publish import write_tally
from .toc import (CHAPTERS, CHAPTERS_DIR, NOTEBOOKS_DIR, RECORD_SUFFIX, STAGES_SUFFIX,  # noqa: F401  (re-exported)
                  TABLE_CHAPTERS)

# every chapter's `parameters` cell defines these (defaults = the smoke run)
COMMON_PARAMETERS = ("model", "device", "prompts", "n_per_prompt", "steps", "seed", "results_dir", "profile")
PROFILES_DIR = Path("book") / "profiles"
PARTIAL_SUFFIX = ".partial.ipynb"



# ----------------------------------------------------------------------------- profiles and parameters

def _profile_file(profile: str | os.PathLike) -> Path | None:
    """`profile` as a path to a YAML file (it ends in .yml/.yaml, or is an existing path with a separator), else
    None (it is a name)."""
    text = str(profile)
    if text.endswith((".yml", ".yaml")) or (any(s in text for s in (os.sep, "/")) and Path(text).exists()):
        return Path(text)
    return None


def profile_path(profile: str | os.PathLike, root: str | os.PathLike = ".") -> Path:
    """The YAML file of a profile: ``book/profiles/<profile>.yml`` under root, or `profile` itself when a path."""
    return _profile_file(profile) or Path(root) / PROFILES_DIR / f"{profile}.yml"


def profile_name(profile: str | os.PathLike) -> str:
    """What the chapters get as their `profile` parameter: the name, or a profile file's stem."""
    path = _profile_file(profile)
    return path.stem if path else str(profile)


def available_profiles(root: str | os.PathLike = ".") -> list[str]:
    return sorted(p.stem for p in (Path(root) / PROFILES_DIR).glob("*.yml"))


def load_profile(profile: str | os.PathLike, root: str | os.PathLike = ".") -> dict:
    """The profile's mapping {common: {...}, <stem>: {...}} (sections may be empty); profile: a name or a file."""
    import yaml

    path = profile_path(profile, root)
    if not path.is_file():
        raise ValueError(f"no profile {str(profile)!r} ({path} is missing); available: {available_profiles(root)}, "
                         f"or a path to a .yml file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        mark, context = getattr(err, "problem_mark", None), getattr(err, "context_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
        what = getattr(err, "problem", None) or err
        if context and getattr(err, "context", None):
            what = f"{what}, {err.context} opened on line {context.line + 1}"
        raise ValueError(f"profile {path}:{where} not valid YAML ({what})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a profile must be a mapping of sections, got {type(data).__name__}")
    for key, section in data.items():
        if section is not None and not isinstance(section, dict):
            raise ValueError(f"{path}: section {key!r} must be a mapping of parameters, got {type(section).__name__}")
    return data


def check_profile(data: dict, stems, name: str = "profile") -> None:
    """Raise ValueError on a section that is neither `common` nor a known notebook (a typo would be ignored)."""
    known = set(stems)
    unknown = sorted(str(k) for k in data if k != "common" and k not in known)
    if unknown:
        raise ValueError(f"{name}: unknown section(s) {unknown}; sections are 'common' and notebook stems "
                         f"{sorted(known)}")


def check_parameters(data: dict, declared: dict, name: str = "profile") -> None:
    """Raise ValueError on a parameter no notebook would read (papermill only warns, and the chapter runs without it).

    declared: {stem: the names in its `parameters` cell, or None when unknown}. A `common` key must be declared by
    at least one notebook (the others leave it out); a chapter section's key by that chapter's notebook.
    """
    known = {stem: names for stem, names in declared.items() if names is not None}
    if not known:
        return
    anywhere = set().union(*known.values()) | {"profile"}
    unknown = sorted(str(k) for k in (data.get("common") or {}) if k not in anywhere)
    if unknown:
        raise ValueError(f"{name}: common parameter(s) {unknown} are declared by no notebook's parameters cell")
    for stem, names in known.items():
        unknown = sorted(str(k) for k in (data.get(stem) or {}) if k not in names | {"profile"})
        if unknown:
            raise ValueError(f"{name}: section {stem!r} sets {unknown}, which the parameters cell of "
                             f"{NOTEBOOKS_DIR / stem}.ipynb does not declare")


def merge_params(profile_data: dict, stem: str, profile: str, declared=None) -> dict:
    """Parameters for one notebook: common, then the notebook's own section, then profile=<name>.

    declared: the names in the notebook's `parameters` cell; when given, a `common` entry the notebook lacks is
    left out (papermill would warn about it), while the notebook's own section is passed whole (check_parameters
    refuses a key the notebook lacks before anything runs).
    """
    params = {k: v for k, v in (profile_data.get("common") or {}).items() if declared is None or k in declared}
    params.update(profile_data.get(stem) or {})
    params["profile"] = profile
    return params


def declared_parameters(source: Path) -> set[str] | None:
    """Names assigned in a notebook's `parameters`-tagged cell; None when it has no such cell (or no file)."""
    import ast

    import nbformat

    if not Path(source).exists():
        return None
    for cell in nbformat.read(str(source), as_version=4).cells:
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            tree = ast.parse(cell.source)
            return {t.id for node in ast.walk(tree) if isinstance(node, (ast.Assign, ast.AnnAssign))
                    for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
                    if isinstance(t, ast.Name)}
    return None


def resolve_dirs(params: dict, root: str | os.PathLike = ".") -> dict:
    """Relative paths in parameters named *_dir, made absolute against the repository root."""
    out = dict(params)
    for key, value in params.items():
        if key.endswith("_dir") and isinstance(value, str) and value and not os.path.isabs(value):
            out[key] = str((Path(root) / value).resolve())
    return out


def run_hash(source: Path, params: dict, kernel: str) -> str:
    """Hash of everything a chapter's output depends on: the source notebook's bytes, the (unresolved) parameters,
    the kernel name, the gvcf package's code, and the model (the bundled model by a hash of its weights), so a
    retrained model or a changed package reruns the chapter (its cached images are reused where still valid)."""
    from ..paper.chapter_setup import model_tag

    h = hashlib.sha256()
    h.update(source.read_bytes())
    h.update(json.dumps(params, sort_keys=True, default=str).encode())
    h.update(kernel.encode())
    package = Path(__file__).resolve().parents[1]
    for path in sorted(package.rglob("*.py")):
        h.update(path.relative_to(package).as_posix().encode())
        h.update(path.read_bytes())
    h.update(model_tag(str(params.get("model", "embedded"))).encode())
    return h.hexdigest()


# ----------------------------------------------------------------------------- running

def discover(root: str | os.PathLike = ".") -> list[str]:
    """Stems of the chapter sources in notebooks/, sorted."""
    return sorted(p.stem for p in (Path(root) / NOTEBOOKS_DIR).glob("*.ipynb"))


def _stem(name: str) -> str:
    return Path(name).name.removesuffix(".ipynb")


def _execute(source: Path, target: Path, params: dict, kernel: str, cwd: Path, log_output: bool) -> None:
    """papermill, writing the executed notebook to `target` (separate so tests can replace it)."""
    import papermill

    papermill.execute_notebook(str(source), str(target), parameters=params, kernel_name=kernel,
                               progress_bar=True, log_output=log_output, cwd=str(cwd))


def describe_error(err: BaseException) -> str:
    """One line for a failed chapter: the notebook's own exception (papermill's PapermillExecutionError carries its
    name, message and cell) rather than papermill's wrapper, else the exception itself."""
    ename, evalue = getattr(err, "ename", None), getattr(err, "evalue", None)
    if ename is None:
        return f"{type(err).__name__}: {err}"
    cell = getattr(err, "exec_count", None)
    return f"{ename}: {evalue}" + (f" (at In [{cell}])" if cell is not None else "")


def run(profile: str = "book", notebooks=None, out_dir: str | os.PathLike = CHAPTERS_DIR, kernel: str = "python3",
        log_output: bool = True, force: bool = False, root: str | os.PathLike = ".", keep_going: bool = True) -> list[dict]:
    """Execute the chapter notebooks under a profile; return one record per notebook.

    notebooks: stems (or file names) to run; None = every notebook in notebooks/. A chapter is skipped when
    its output exists and its recorded hash (source + parameters + kernel) is unchanged, unless force.
    With keep_going, a failing chapter does not stop the others; a RuntimeError at the end names the failures.
    """
    root = Path(root)
    available = discover(root)
    data = load_profile(profile, root)
    where = str(profile_path(profile, root))
    check_profile(data, set(available) | set(CHAPTERS), where)
    declared = {stem: declared_parameters(root / NOTEBOOKS_DIR / f"{stem}.ipynb") for stem in available}
    check_parameters(data, declared, where)
    profile = profile_name(profile)
    stems = available if notebooks is None else [_stem(n) for n in notebooks]
    missing = [s for s in stems if s not in available]
    if missing:
        raise ValueError(f"no such notebook(s) in {root / NOTEBOOKS_DIR}: {missing}; available: {available}")
    out = root / out_dir if not Path(out_dir).is_absolute() else Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records, failures = [], []
    for stem in stems:
        source = root / NOTEBOOKS_DIR / f"{stem}.ipynb"
        params = merge_params(data, stem, profile, declared[stem])
        digest = run_hash(source, params, kernel)
        old = None if force else _up_to_date(out, stem, digest)
        if old is not None:
            print(f"[gvcf.book] {stem}: up to date (profile {profile}), skipped", file=sys.stderr)
            records.append({**old, "status": "skipped"})
            continue
        print(f"[gvcf.book] {stem}: running with {json.dumps(params, default=str)}", file=sys.stderr)
        try:
            record = _run_chapter(source, out, params, digest, profile, kernel, root, log_output)
        except Exception as err:  # noqa: BLE001 - report and go on with the other chapters
            error = describe_error(err)
            print(f"[gvcf.book] {stem}: FAILED ({error}); the partly executed notebook is "
                  f"{out / f'{stem}{PARTIAL_SUFFIX}'}", file=sys.stderr)
            failures.append((stem, error, err))
            records.append({"notebook": stem, "status": "failed", "error": error})
            if not keep_going:
                break
            continue
        print(f"[gvcf.book] {stem}: done in {record['seconds']:.0f} s -> {out / f'{stem}.ipynb'}", file=sys.stderr)
        records.append({**record, "status": "ran"})
    print_stages(records)
    write_tally(out, available, profile, root)
    if failures:
        raise RuntimeError(f"{len(failures)} chapter(s) failed: "
                           + "; ".join(f"{s} ({e})" for s, e, _ in failures)) from failures[0][2]
    return records


def _up_to_date(out: Path, stem: str, digest: str) -> dict | None:
    """The chapter's run record when its executed notebook is in `out` and was made from the same hash, else None."""
    target, record_path = out / f"{stem}.ipynb", out / f"{stem}{RECORD_SUFFIX}"
    if not (target.exists() and record_path.exists()):
        return None
    try:
        old = json.loads(record_path.read_text())
    except (OSError, ValueError):
        return None
    return old if old.get("hash") == digest else None


def _run_chapter(source: Path, out: Path, params: dict, digest: str, profile: str, kernel: str, root: Path,
                 log_output: bool) -> dict:
    """Execute one chapter into `out` (a partial file, then renamed), timing its stages; write and return its run
    record. Raises whatever the execution raised, the partial notebook left for reading."""
    stem = source.stem
    partial, target = out / f"{stem}{PARTIAL_SUFFIX}", out / f"{stem}.ipynb"
    stage_log = out / f"{stem}{STAGES_SUFFIX}"
    stage_log.unlink(missing_ok=True)
    t0 = time.perf_counter()
    with _environment(STAGE_LOG_ENV, str(stage_log.resolve())):   # the kernel inherits it
        _execute(source, partial, resolve_dirs(params, root), kernel, source.parent.resolve(), log_output)
    seconds = time.perf_counter() - t0
    spent = read_log(stage_log)
    stage_log.unlink(missing_ok=True)
    _present(partial, stem, profile, params)
    os.replace(partial, target)
    record = {"notebook": stem, "profile": profile, "hash": digest, "params": params, "kernel": kernel,
              "seconds": round(seconds, 1), "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "stages": {k: round(v, 1) for k, v in spent.items()}}
    record_path = out / f"{stem}{RECORD_SUFFIX}"
    tmp = record_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True, default=str) + "\n")
    os.replace(tmp, record_path)
    return record


@contextlib.contextmanager
def _environment(name: str, value: str):
    """os.environ[name] = value for the block, then as it was."""
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def _present(notebook: Path, stem: str, profile: str, params: dict) -> None:
    """The executed chapter as the book shows it (gvcf.book.render.present: code folded, the settings table in place
    of the parameters cells). A notebook that cannot be read is left as papermill wrote it, with a warning."""

    try:
        render.present_file(notebook, profile, params)
    except Exception as err:  # noqa: BLE001 - the chapter ran; only its presentation is missing
        print(f"[gvcf.book] {stem}: WARNING: could not prepare the page ({type(err).__name__}: {err}); "
              f"code cells stay unfolded", file=sys.stderr)


# ----------------------------------------------------------------------------- CLI

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gvcf.book", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="execute chapter notebooks with papermill")
    r.add_argument("--profile", default="book", help="a name in book/profiles/ (default: book) or a .yml file")
    r.add_argument("--notebooks", nargs="+", metavar="STEM", help="only these chapters (default: all)")
    r.add_argument("--out-dir", default=str(CHAPTERS_DIR))
    r.add_argument("--kernel", default="python3")
    r.add_argument("--force", action="store_true", help="rerun even if up to date")
    r.add_argument("--quiet", action="store_true", help="do not echo cell output")
    r.add_argument("--stop-on-error", action="store_true", help="stop at the first failing chapter")
    p = sub.add_parser("params", help="print the merged parameters of a chapter under a profile")
    p.add_argument("--profile", default="book")
    p.add_argument("notebooks", nargs="*", metavar="STEM")
    c = sub.add_parser("check", help="check the built HTML")
    c.add_argument("--build-dir", default=str(BUILD_DIR))
    args = parser.parse_args(argv)

    if args.command == "run":
        try:
            records = run(args.profile, args.notebooks, args.out_dir, args.kernel, log_output=not args.quiet,
                          force=args.force, keep_going=not args.stop_on_error)
        except (ValueError, RuntimeError) as err:
            print(f"gvcf.book: {err}", file=sys.stderr)
            return 1
        for rec in records:
            print(f"{rec['notebook']}: {rec['status']}" + (f" ({rec['seconds']} s)" if rec["status"] == "ran" else ""))
        return 0
    if args.command == "params":
        try:
            data = load_profile(args.profile)
            declared = {s: declared_parameters(NOTEBOOKS_DIR / f"{s}.ipynb") for s in discover()}
            check_parameters(data, declared, str(profile_path(args.profile)))
        except ValueError as err:
            print(f"gvcf.book: {err}", file=sys.stderr)
            return 1
        stems = [_stem(s) for s in args.notebooks] or list(declared) or list(CHAPTERS)
        unknown = [s for s in stems if declared and s not in declared]
        if unknown:   # a misspelt stem printed the defaults of a chapter that does not exist
            print(f"gvcf.book: no such notebook(s) in {NOTEBOOKS_DIR.name}: {unknown}; available: {list(declared)}",
                  file=sys.stderr)
            return 1
        print(json.dumps({s: merge_params(data, s, profile_name(args.profile), declared.get(s))
                          for s in stems}, indent=1))
        return 0
    problems = check_html(args.build_dir)
    for prob in problems:
        print(prob)
    if problems:
        print(f"gvcf.book check: {len(problems)} problem(s) in {args.build_dir}", file=sys.stderr)
        return 1
    print(f"gvcf.book check: {args.build_dir} OK ({len(CHAPTERS)} chapters)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
