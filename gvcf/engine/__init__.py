"""The method: views of a canvas, weight maps, fusion (Eq. 8 / Eq. 14), samplers, Style Alignment (Eq. 15), models,
the generation loop and SyncDiffusion's gradient hook. Imports nothing else from gvcf."""
