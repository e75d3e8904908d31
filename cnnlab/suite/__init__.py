"""The suite's machinery: notebook parameters and profiles (`params`), running notebooks with papermill
and caching their results (`runner`), the results record a notebook writes (`results`), the scorecard and
tables across experiments (`report`) and the command line (`cli`). It uses the science modules; they never
import it.
"""
