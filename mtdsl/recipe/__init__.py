"""Recipes: the programs that join the stages (data, engine, report) into a run."""
