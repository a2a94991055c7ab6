"""Image hook of the lmms-eval task mop_shapes_lmms (see mop_shapes_lmms.yaml).

Runs inside lmms-eval's environment: only PIL images, no project imports.
"""


def doc_to_visual(doc) -> list:
    """The question's picture as an RGB image; lmms-eval expects a list of visuals per document."""
    return [doc["image"].convert("RGB")]
