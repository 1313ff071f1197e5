"""`bin/generate run RECIPE.toml`: a pipeline as a recipe (factory/recipes.py loads, validates and checks it;
here each stage runs through its command, with the recipe's values checked by click as a command line is)."""

from __future__ import annotations

import click

from factory import recipes
from factory.cli.options import command
from factory.core.progress import console
from factory.core.specs import RecipeSpec


@command(RecipeSpec)
def run(spec: RecipeSpec) -> None:
    group = click.get_current_context().parent.command
    planned = recipes.load_recipe(spec.recipe, spec.folder)

    def run_stage(number: int, stage: recipes.Stage) -> None:
        console.rule(f"[bold]stage {number}/{len(planned)}: {stage.name}[/]")
        console.print(f"bin/generate {stage.name} {' '.join(stage.argv())}", highlight=False, soft_wrap=True)
        stage_command = group
        for part in stage.name.split():
            stage_command = stage_command.commands[part]
        # the recipe's values as the command's defaults: click converts and checks them as it does a command line
        with stage_command.make_context(f"generate {stage.name}", [], default_map=stage.values) as ctx:
            stage_command.invoke(ctx)

    recipes.run_recipe(planned, run_stage)
    console.rule(f"[bold green]recipe {spec.recipe} complete[/]")
