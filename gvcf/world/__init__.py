"""The bundled model: the procedural panorama world it is trained on (one family per paper prompt), its trainer and
its model card. Imports gvcf.engine, gvcf.eval and gvcf.paper."""
