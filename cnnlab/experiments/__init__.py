"""One module per training experiment: its protocol (what is built, trained and measured, from the
notebook's parameters) and the claims it checks, each with the rule that decides its verdict.

A notebook calls these in order and shows what they return; the science they use lives in the modules
above (data, models, train, probe, compare). Modules here may use the suite's `Record` and rules, the
science modules never import from here.
"""
