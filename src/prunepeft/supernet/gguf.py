"""A GGUF checkpoint (llama.cpp's single-file format) as an ordinary Hugging Face model folder.

transformers reads GGUF with `from_pretrained(folder, gguf_file=NAME)` by dequantising every
tensor to fp32, which costs tens of seconds each time. So a GGUF file is converted ONCE into
`<cache>/models/<stem>-<key>/` (config, safetensors weights, tokenizer), where <key> hashes the
file's resolved path, size and modification time: an edited or replaced file gets a new folder.
Every later run loads that folder through the normal path.

The folder is written under a temporary name and renamed when complete, so a killed conversion
never leaves a folder that a later run would load.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import tempfile
import time
from pathlib import Path

from prunepeft.errors import UserError
from prunepeft.io import cache_root, write_json
from prunepeft.logs import get_logger

MAGIC = b"GGUF"  # the first four bytes of every GGUF file
SOURCE_FILE = "prunepeft-gguf-source.json"  # provenance, written into each converted folder
STALE_SECONDS = 3600  # a temporary folder this old is a killed conversion, not a running one


def models_dir() -> Path:
    return cache_root() / "models"


def is_gguf(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == MAGIC
    except OSError:
        return False


def cache_key(path: Path) -> str:
    """Short hash of the file's identity: resolved path, size and modification time (a stat, not
    a read of the file, so a cache hit costs nothing)."""
    st = path.stat()
    return hashlib.sha256(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:12]


def cached_folder(path: Path) -> Path:
    return models_dir() / f"{path.stem}-{cache_key(path)}"


def check_gguf_file(path: Path) -> None:
    """One UserError for a path that is no readable, complete GGUF file."""
    if not path.exists():
        raise UserError(f"--model {path}: no such GGUF file; pass an existing .gguf file, a model folder, or a Hub id")
    if not path.is_file():
        raise UserError(f"--model {path} is not a file; a GGUF model is one .gguf file")
    if not is_gguf(path):
        raise UserError(f"--model {path} is not a GGUF file (it does not start with the bytes 'GGUF'); "
                        "pass a llama.cpp .gguf file, or a Hugging Face model folder")
    if importlib.util.find_spec("gguf") is None:
        raise UserError("reading GGUF files needs the gguf package: run `pip install gguf` (or scripts/setup.sh)")
    from gguf import GGUFReader

    try:  # parses the header and maps every tensor: a truncated file fails here, in assorted ways
        GGUFReader(str(path))
    except Exception as e:  # any failure to parse the file is the file's fault
        raise UserError(f"--model {path} is a damaged or truncated GGUF file ({type(e).__name__}: {e}); "
                        "download or copy it again") from None


def hf_folder_for(path: str | Path) -> Path:
    """The cached Hugging Face folder of a GGUF file, converting it on first use."""
    path = Path(path).expanduser()
    if path.is_file() and cached_folder(path).is_dir():  # only a finished conversion ever has the final name
        return cached_folder(path)
    check_gguf_file(path)
    return convert(path, cached_folder(path))


def convert(path: Path, folder: Path) -> Path:
    """Dequantise `path` with transformers and save it as a plain model folder at `folder`."""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        _sweep_stale(folder)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.tmp-"))
    except OSError as e:
        raise UserError(f"cannot write the converted model under {folder.parent}: {e.strerror}; "
                        "set PRUNEPEFT_CACHE to a writable folder") from None
    get_logger().info(f"converting {path} once into the Hugging Face folder {folder} (about half a minute)")
    try:
        _write_hf_folder(path, tmp)
        write_json(tmp / SOURCE_FILE, {"gguf_file": str(path.resolve()), "size": path.stat().st_size,
                                       "mtime_ns": path.stat().st_mtime_ns, "converted_at": time.strftime("%Y-%m-%dT%H:%M:%S")})
        tmp.chmod(0o755)  # mkdtemp's 0700 would hide a shared cache from its other users
        try:
            tmp.rename(folder)
        except OSError:
            if not folder.is_dir():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another process finished the same conversion first
    except OSError as e:  # reading errors became UserErrors already: this is the disk (full, read-only)
        shutil.rmtree(tmp, ignore_errors=True)
        raise UserError(f"cannot write the converted model under {folder.parent}: {e.strerror or e}; "
                        "free some space or set PRUNEPEFT_CACHE to another folder") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _write_hf_folder(path: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        loaded = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    except (OSError, ValueError, KeyError, NotImplementedError) as e:
        raise UserError(f"transformers cannot read the model in {path}: {str(e).rstrip('.')}. GGUF files of the architectures transformers "
                        "supports (Llama, Mistral, Qwen2, ...) work; otherwise pass a Hugging Face model folder") from None
    if tokenizer.pad_token is None:  # decoders ship without one; batches of classification need it
        tokenizer.pad_token = tokenizer.eos_token
    config = loaded.config
    # save_pretrained refuses a model that carries a GGUF quantization_config, although its
    # weights are plain fp32 by now: rebuild the model from the config without it.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    if config.pad_token_id is None:
        config.pad_token_id = tokenizer.pad_token_id
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    del loaded
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))


def _sweep_stale(folder: Path) -> None:
    """Remove temporary folders of killed conversions of the same file (each holds the full weights)."""
    for tmp in folder.parent.glob(f".{folder.name}.tmp-*"):
        try:
            age = time.time() - tmp.stat().st_mtime
        except FileNotFoundError:  # its own process just finished or cleaned it
            continue
        if age > STALE_SECONDS:
            shutil.rmtree(tmp, ignore_errors=True)
