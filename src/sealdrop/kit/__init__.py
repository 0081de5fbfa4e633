"""The reach kit: static pages, one per language, that tell a source how to reach the drop from
behind a censor (``sealdrop kit DIR --out FOLDER``). See docs/reach-kit.md.

The pages are made once on the operator's machine and published by the organisation on its own
website and mirrors. They hold no script and load nothing from another origin, so a censor or an
ad network learns nothing from a reader's browser beyond the page itself.
"""
