"""gvcf: Guided and Variance-Corrected Fusion with one-shot Style Alignment (AAAI-25), for diffusers models."""
from .fusion import FUSIONS, FusionPlan, fuse
from .generate import GenerationResult, derive_seed, generate, generate_views
from .models import Model, load_model
from .samplers import make_sampler
from .style import align_noise, slerp
from .views import ViewLayout
from .weights import weight_map

__all__ = [
    "FUSIONS", "FusionPlan", "GenerationResult", "Model", "ViewLayout", "align_noise", "derive_seed", "fuse",
    "generate", "generate_views", "load_model", "make_sampler", "slerp", "weight_map",
]
__version__ = "0.1.0"
