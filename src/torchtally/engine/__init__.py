"""Everything that runs the model and records what happened: the inputs of the call, the
module tree, fake conversion and replay, the counting dispatch mode, module tracking and
forward patching, the guard that restores the model, parameter accounting, memory
lifetimes and traffic, training and the optimizer step, mixture-of-experts routing,
measured timing, and the step that builds the report (`build.py`). `run.analyze` is the
orchestrator.

The engine imports `formulas/`, `report/` and the errors module, never `render/`, `cli/`
or `compat/`."""
