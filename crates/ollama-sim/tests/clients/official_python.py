"""Drives ollama-sim with Ollama's official Python client (the `ollama` package on PyPI).

Usage: python3 official_python.py URL

Every call below is one a Python program makes against a real Ollama server. The script
exits non-zero with the failing check's message if the simulator answers in a shape the
client cannot read or with values a real server would not give.
"""

import json
import sys

import ollama


def check(condition, message):
    if not condition:
        print(f"FAILED: {message}", file=sys.stderr)
        sys.exit(1)


def main(url):
    client = ollama.Client(host=url)
    report = {"client_version": getattr(ollama, "__version__", "unknown")}

    listed = client.list()
    names = [model.model for model in listed.models]
    check("alpha" in names, f"list() names the catalogue: {names}")
    alpha = next(model for model in listed.models if model.model == "alpha")
    check(alpha.size and alpha.size > 0, f"list() gives sizes: {alpha}")
    check(alpha.digest, f"list() gives digests: {alpha}")

    shown = client.show("alpha")
    check(shown.modelinfo, "show() gives model_info")
    check("thinking" in (shown.capabilities or []), f"show() capabilities: {shown.capabilities}")

    # A preload as Python programs write it: generate with no prompt and a keep_alive.
    preload = client.generate(model="alpha", prompt="", keep_alive="10m")
    check(preload.done, "a preload ends done")
    check(preload.response == "", f"a preload answers no text: {preload.response!r}")
    running = [model.model for model in client.ps().models]
    check(running == ["alpha"], f"ps() after the preload: {running}")
    expires = client.ps().models[0].expires_at
    check(expires is not None, "ps() gives expires_at")

    reply = client.chat(
        model="alpha",
        messages=[{"role": "user", "content": "Say hello."}],
        think=True,
        options={"num_ctx": 2048, "num_predict": 64},
    )
    check(reply.done, "chat() ends done")
    check(reply.message.role == "assistant", f"chat() role: {reply.message.role}")
    check(reply.done_reason in ("stop", "length"), f"done_reason: {reply.done_reason}")
    check(reply.eval_count and reply.eval_count <= 64, f"eval_count within num_predict: {reply.eval_count}")
    check(reply.prompt_eval_count and reply.prompt_eval_count > 0, "prompt_eval_count")
    report["chat_thinking_chars"] = len(reply.message.thinking or "")

    pieces = list(
        client.chat(
            model="alpha",
            messages=[{"role": "user", "content": "Count to five."}],
            stream=True,
            think=False,
        )
    )
    check(len(pieces) > 1, f"a streamed chat comes in pieces: {len(pieces)}")
    check(pieces[-1].done and not any(piece.done for piece in pieces[:-1]), "only the last piece is done")
    text = "".join(piece.message.content for piece in pieces)
    check(text, "a streamed chat has content")
    check(not any(piece.message.thinking for piece in pieces), "think=False gives no thinking")
    report["streamed_pieces"] = len(pieces)

    def read_file(path: str) -> str:
        """Reads a file.

        Args:
            path: The file to read.
        """
        return path

    tools = client.chat(
        model="alpha",
        messages=[{"role": "user", "content": "Read src/lib.rs."}],
        tools=[read_file],
    )
    check(tools.done, "a chat with tools ends done")
    for call in tools.message.tool_calls or []:
        check(isinstance(call.function.arguments, dict), f"tool arguments are an object: {call}")

    try:
        client.chat(model="plain", messages=[{"role": "user", "content": "hi"}], tools=[read_file])
        check(False, "tools on a model without the capability must fail")
    except ollama.ResponseError as error:
        check(error.status_code == 400, f"tools error status: {error.status_code}")
        check("does not support tools" in error.error, f"tools error wording: {error.error}")

    try:
        client.chat(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
        check(False, "a missing model must fail")
    except ollama.ResponseError as error:
        check(error.status_code == 404, f"missing model status: {error.status_code}")
        check("not found" in error.error, f"missing model wording: {error.error}")

    unload = client.generate(model="alpha", prompt="", keep_alive=0)
    check(unload.done, "an unload ends done")
    check(unload.done_reason == "unload", f"an unload says so: {unload.done_reason}")

    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1])
