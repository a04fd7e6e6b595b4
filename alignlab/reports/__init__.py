"""Reports: each regenerates a figure or table from the library, writes its data (CSV) and
picture (PNG + PDF) with the resolved settings (JSON), and checks the claim it makes.

* :mod:`~alignlab.reports.figure3`: Figure 3 of the PFA paper, Propositions 2 and 3 by
  simulation (``alignlab figure3``);
* :mod:`~alignlab.reports.theory_table`: the closed forms at a list of ratios
  (``alignlab theory``);
* :mod:`~alignlab.reports.curves`: training curves of run directories (``alignlab plot``),
  from :mod:`~alignlab.reports.runs` (the runs read, labelled by
  :mod:`~alignlab.reports.labels`, and their statistics over seeds);
* :mod:`~alignlab.reports.compare`: measured alignment against Propositions 1-3 and the
  Monte Carlo at each layer's shapes (``alignlab compare``);
* :mod:`~alignlab.reports.cli`: the subcommands of every report (``figure3``, ``theory``,
  ``teacher-student``, ``plot``, ``compare``);
* :mod:`~alignlab._output`: output locations checked before any work, and files
  written as one set (temporary names, then renames).

Nothing here is imported by ``import alignlab.reports``.
"""
