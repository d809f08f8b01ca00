"""The ways AffectStudio is used: the ``affect`` command line (and, as they land, the studio app,
batch rendering and benchmarks). Nothing else in the project imports from here."""
