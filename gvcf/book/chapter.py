"""A chapter's setup from its notebook parameters: one call, `setup, chapter_prompts = chapter(globals())`."""
from __future__ import annotations

import json
import math

from ..engine.checks import is_number, positive_int
from ..paper.constants import PAPER_PROMPTS
from ..paper.chapter_setup import Setup, setup


def _decode(value, name: str):
    """papermill -p passes lists as text: decode JSON (or YAML) lists; other strings stay strings."""
    if isinstance(value, str) and value.strip()[:1] in ("[", "("):
        text = value.strip()
        try:
            return json.loads(text)
        except ValueError:
            import yaml

            try:
                return yaml.safe_load(text)
            except yaml.YAMLError as err:
                raise ValueError(f"{name}: cannot read {value!r} as a list ({err})") from None
    return value


def resolve_prompts(prompts=None, default=PAPER_PROMPTS, first: int | None = None) -> list[str]:
    """The prompts a chapter runs: None -> the first `first` of `default` (all if first is None); a list; one prompt
    as a string; or a JSON/YAML list as text (what `papermill -p prompts '[...]'` passes). `first` only trims the
    default: prompts given explicitly are all used."""
    if prompts is None:
        out = list(default)
        if positive_int(first, "n_prompts", optional=True) is not None:
            out = out[:first]
    else:
        prompts = _decode(prompts, "prompts")
        out = [prompts] if isinstance(prompts, str) else list(prompts)
    if not out or not all(isinstance(p, str) and p.strip() for p in out):
        raise ValueError(f"prompts must be a non-empty list of non-empty strings, got {prompts!r}")
    return [p.strip() for p in out]


# the range of each list parameter's values, checked when the chapter reads it (before any image set is made):
# name -> (lowest, highest or None, unit). strides are pixels (whether one fits the model's view: gvcf.paper.chapter_tables.stride_sets)
NUMBER_RANGES = {"alphas": (0.0, 1.0, "Style Alignment strength"), "strides": (1, None, "px")}


def resolve_numbers(values, default, name: str, kind=float) -> list:
    """A list parameter of numbers (alphas, strides): None -> default; a number; a list; or a list as text. Every
    value finite and in NUMBER_RANGES[name] where the name has one; ValueError naming `name` otherwise."""
    values = _decode(values, name)
    if values is None:
        values = default
    if is_number(values):
        values = [values]
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ValueError(f"{name} must be a list of numbers, got {values!r}")
    values = list(values)
    if not values or not all(is_number(v) and math.isfinite(v) for v in values):
        raise ValueError(f"{name} must be a non-empty list of finite numbers, got {values!r}")
    if kind is int and any(float(v) != int(v) for v in values):
        raise ValueError(f"{name} must be a non-empty list of ints, got {values!r}")
    out = [kind(v) for v in values]
    low, high, unit = NUMBER_RANGES.get(name, (None, None, ""))
    for k, v in enumerate(out):
        if (low is not None and v < low) or (high is not None and v > high):
            span = f"[{low:g}, {high:g}]" if high is not None else f">= {low:g}"
            raise ValueError(f"{name} must lie in {span} ({unit}), got {v!r} ({name}[{k}] of {values!r})")
    return out



# The parameters chapter() reads: its own and setup()'s (its signature, less `verbose`: a chapter prints no
# generation lines, the runner's stage summary times generation per method). Every chapter's parameters cell
# assigns each of them but those in OPTIONAL_PARAMETERS, which only some chapters have (setup's default elsewhere).
OWN_PARAMETERS = ("prompts", "n_prompts", "n_per_prompt", "profile")
OPTIONAL_PARAMETERS = ("sync_weight",)


def chapter_parameters() -> tuple[str, ...]:
    """The names chapter() takes from a notebook's namespace: OWN_PARAMETERS, then setup()'s parameters."""
    import inspect

    return OWN_PARAMETERS + tuple(n for n in inspect.signature(setup).parameters if n != "verbose")


def parameters_from(namespace) -> dict:
    """{name: value} of chapter_parameters() in `namespace` (a notebook's globals(): its parameters cell, with
    papermill's overrides after it). ValueError naming every parameter the namespace lacks that is not optional,
    with the names there that look like it (a misspelt assignment in a parameters cell)."""
    import difflib

    names = chapter_parameters()
    missing = [n for n in names if n not in namespace and n not in OPTIONAL_PARAMETERS]
    if missing:
        near = {n: difflib.get_close_matches(n, [k for k in namespace if isinstance(k, str)], n=1) for n in missing}
        hints = "".join(f"; {n}: did you mean to assign it as {near[n][0]!r}?" for n in missing if near[n])
        raise ValueError(f"the chapter's parameters cell must assign {missing} (every chapter's parameters: "
                         f"{[n for n in names if n not in OPTIONAL_PARAMETERS]}){hints}")
    return {n: namespace[n] for n in names if n in namespace}


def chapter(namespace=None, /, *, default_prompts: int | None = None, **parameters) -> tuple[Setup, list[str]]:
    """Set a chapter up: its Setup (model loaded once per kernel, image sets under results_dir) and its prompts
    (the first n_prompts of the paper's first `default_prompts` prompts unless prompts are given). Prints two lines
    saying what runs.

    A notebook passes its namespace, so each parameter is declared once, in its parameters cell:
    ``setup, prompts = chapter(globals(), default_prompts=5)`` reads chapter_parameters() from it (ValueError
    naming a missing one: parameters_from). Scripts and tests may pass the parameters by keyword instead (they win
    over the namespace): prompts, n_prompts, n_per_prompt, profile, and gvcf.paper.chapter_setup.setup's (model,
    device, results_dir, dataset_dir, seed, steps, ddim_steps, ddpm_steps, width_views, stride, sync_weight)."""
    values = ({} if namespace is None else parameters_from(namespace)) | parameters
    prompts, n_prompts = values.pop("prompts", None), values.pop("n_prompts", None)
    n_per_prompt, profile = values.pop("n_per_prompt", 1), values.pop("profile", "")
    positive_int(n_per_prompt, "n_per_prompt")
    S = setup(**values, verbose=False)
    chosen = resolve_prompts(prompts, PAPER_PROMPTS[:default_prompts], first=n_prompts)
    print(f"profile {profile}: model {S.model_name} on {S.device}\n{len(chosen)} prompt(s) x {n_per_prompt} "
          f"panorama(s); DDIM {S.steps_for('ddim')} steps, DDPM {S.steps_for('ddpm')} steps")
    return S, chosen
