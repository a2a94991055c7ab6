"""Model knowledge that is more than a text family's data: multimodal wrappers around a text
decoder. A plugin is found from a checkpoint's config (mop.families.WRAPPER_PLUGINS maps its
model_type to the plugin's module) and imported only then, so that scripts never choose one and
nothing below this layer imports it."""
