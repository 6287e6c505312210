"""The language-model answer mode (issue 13), imported only when ``BOUNCEBOT_LLM`` is not ``off``.

- ``guard``   the checks a generated text must pass before it is shown
- ``prompt``  what the model is asked for a message, from the default mode's answer
- ``mode``    ``LLMAnswerer``: the default answer, the model's text on top, guarded; ``stream_ask``
- ``measure`` the mode on dev questions: interventions, fallbacks, latency
              (``python -m app.answering.llm.measure``)
"""
