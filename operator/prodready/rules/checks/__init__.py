"""The rule functions, one module per checklist section; `prodready.rules.registry` lists them."""
