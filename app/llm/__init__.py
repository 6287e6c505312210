"""The language-model door (issue 13): one LangChain chat model, local or OpenAI-compatible.

Nothing here is imported while ``BOUNCEBOT_LLM=off`` (the default): callers check the
mode first and import ``app.llm.door`` only when it is ``local`` or ``openai``. This
package imports nothing at import time beyond the standard library.

- ``settings``    ``LLMSettings.from_env``: the BOUNCEBOT_LLM* settings
- ``model_file``  the verified GGUF: located in the installed parts, joined once, hashed
                  (``python -m app.llm.model_file``)
- ``runtime``     the model in this process: one ``xllamacpp.Server``, loaded once
- ``local``       ``LocalChatModel``: a LangChain ``BaseChatModel`` over it, streaming, with the
                  prompt prefix's KV cache kept warm (``warm``)
- ``door``        ``make_chat_model(settings)``: the one door (``None`` when off)
- ``prefix``      the fixed part of the prompt: instructions and the whole article
- ``serve``       an OpenAI-compatible HTTP server on loopback over the same GGUF
- ``measure``     load time, time to first token and full answers (``python -m app.llm.measure``)
"""
