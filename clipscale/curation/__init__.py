"""Worldwide curation (Meta CLIP 2): language ID, per-language metadata, Aho-Corasick matching,
per-language balancing from the English tail share, noisy-OR sampling, on Ray Data.

Entry points: ``job.run_curation(CurationConfig)`` (the whole job), ``sampling.online_caption`` /
``sampling.online_choice`` (the per-epoch draw of online mode), the pure functions of ``matching``
and ``balance``.
"""
