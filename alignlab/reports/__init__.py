"""Reports: each regenerates one figure (CSV + PNG + PDF + the resolved settings as JSON)
and checks the claim the figure makes. ``figure3``: Propositions 2 and 3 by simulation."""
