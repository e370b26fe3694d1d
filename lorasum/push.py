"""``lorasum push``: upload a run's adapter or model folder, with its card, to the Hub.

Uploading is ``huggingface_hub.HfApi`` (``create_repo`` + ``upload_folder``); this module only
picks the folder a run saved, checks that it carries its card, and turns Hub errors into
one-line messages.
"""
from __future__ import annotations

from pathlib import Path

from lorasum.errors import LorasumError
from lorasum.methods import METHODS


def artifact_folder(run_dir: str | Path) -> Path:
    """The folder of ``run_dir`` that holds the trained artifact (``adapter/`` or ``model/``)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise LorasumError(f"run folder not found: {run_dir}")
    for m in METHODS.values():
        if m.holds_artifact(run_dir / m.artifact_name):
            return run_dir / m.artifact_name
    names = " or ".join(f"{m.artifact_name}/" for m in METHODS.values())
    raise LorasumError(f"{run_dir}: no trained {names} folder; train the run to the end first")


def push_run(run_dir: str | Path, repo: str, *, private: bool = False, token: str | None = None,
             api=None) -> str:
    """Create ``repo`` (if needed) and upload the run's artifact folder; return the repo URL."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    folder = artifact_folder(run_dir)
    if not (folder / "README.md").is_file():
        raise LorasumError(f"{folder}: no model card (README.md); evaluate the run to the end first")
    api = api or HfApi(token=token)
    try:
        url = api.create_repo(repo_id=repo, private=private, exist_ok=True, repo_type="model")
        api.upload_folder(folder_path=str(folder), repo_id=repo, repo_type="model",
                          commit_message=f"lorasum: upload {folder.name} of {Path(run_dir).name}")
    except HfHubHTTPError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise LorasumError(f"push to {repo} failed: {first} (check the repo name and your token: "
                           "`huggingface-cli login` or HF_TOKEN)") from None
    return str(url)
