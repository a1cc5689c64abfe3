"""gvcf: Guided and Variance-Corrected Fusion with one-shot Style Alignment (AAAI-25), for diffusers models."""
import warnings

with warnings.catch_warnings():   # tqdm.auto warns on import in a Jupyter kernel without ipywidgets (text bars then)
    warnings.filterwarnings("ignore", message="IProgress not found")
    import tqdm.auto  # noqa: F401

from .engine.fusion import FUSIONS, FusionPlan, fuse
from .eval import evidence
from .engine.generate import GenerationResult, derive_seed, generate, generate_batch, generate_views
from .engine.elastic import generate_elastic
from .engine.models import Model, load_model
from .engine.regions import strip_mask
from .engine.samplers import make_sampler
from .engine.style import align_noise, slerp
from .engine.views import ViewLayout
from .engine.weights import weight_map

__all__ = [
    "FUSIONS", "FusionPlan", "GenerationResult", "Model", "ViewLayout", "align_noise", "derive_seed", "evidence", "fuse",
    "generate", "generate_batch", "generate_elastic", "generate_views", "load_model", "make_sampler", "slerp", "strip_mask", "weight_map",
]
__version__ = "0.1.0"
