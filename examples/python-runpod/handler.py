"""A RunPod serverless handler written the way RunPod's Python SDK expects, run by kiln unchanged.

The "model" is a tiny formant synthesizer in pure Python: it stands in for a real TTS model
(Higgs Audio, F5-TTS) so this example needs nothing but the standard library and `runpod`.
"""

import base64
import io
import math
import os
import random
import time
import wave

import runpod

SAMPLE_RATE = 16000
MAX_TEXT_CHARS = 2000

# Loaded on the first request that needs it, never at import: a model that loads at import time
# kills the container before the worker can report anything.
MODEL = None
MODEL_LOAD_ERROR = None
STATS = {"requests": 0, "model_loads": 0, "loaded_at": None}


class FormantModel:
    """Letters to sound: vowels as two formant sines, consonants as short noise bursts."""

    # First and second formants (Hz) of the vowels, rounded from textbook averages.
    FORMANTS = {
        "a": (730, 1090), "e": (530, 1840), "i": (270, 2290),
        "o": (570, 840), "u": (300, 870), "y": (270, 2290),
    }

    def __init__(self, sample_rate):
        self.sample_rate = sample_rate
        self.letter_s = 0.07
        self.rng = random.Random(7)

    def letter(self, ch):
        n = int(self.sample_rate * self.letter_s)
        if ch in self.FORMANTS:
            f1, f2 = self.FORMANTS[ch]
            fade = [min(1.0, i / 200, (n - i) / 200) for i in range(n)]
            return [fade[i] * (0.5 * math.sin(2 * math.pi * f1 * i / self.sample_rate)
                               + 0.3 * math.sin(2 * math.pi * f2 * i / self.sample_rate)) for i in range(n)]
        if ch.isalpha():
            return [0.15 * (self.rng.random() * 2 - 1) for _ in range(n // 2)] + [0.0] * (n - n // 2)
        return [0.0] * n

    def synthesize(self, word):
        samples = []
        for ch in word.lower():
            samples.extend(self.letter(ch))
        samples.extend([0.0] * int(self.sample_rate * 0.05))
        return samples


def load_model():
    global MODEL, MODEL_LOAD_ERROR
    if MODEL is not None or MODEL_LOAD_ERROR is not None:
        return MODEL
    try:
        print("First request: loading the model...", flush=True)
        MODEL = FormantModel(int(os.environ.get("SAMPLE_RATE", SAMPLE_RATE)))
        STATS["model_loads"] += 1
        STATS["loaded_at"] = time.time()
    except Exception as e:  # kept so every later request can say why
        MODEL_LOAD_ERROR = str(e)
    return MODEL


def to_wav(samples, sample_rate):
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(b"".join(int(max(-1.0, min(1.0, s)) * 32767).to_bytes(2, "little", signed=True) for s in samples))
    return buf.getvalue()


def synthesize(job, job_input):
    text = job_input.get("text")
    if not isinstance(text, str) or not text.strip():
        return {"error": "text is required and must not be empty"}
    if len(text) > MAX_TEXT_CHARS:
        return {"error": f"text has {len(text)} characters; at most {MAX_TEXT_CHARS} are allowed"}
    model = load_model()
    if model is None:
        return {"error": f"model failed to load: {MODEL_LOAD_ERROR}"}
    words = text.split()
    samples = []
    for i, word in enumerate(words):
        samples.extend(model.synthesize(word))
        runpod.serverless.progress_update(job, {"word": i + 1, "of": len(words)})
    return {
        "audio_base64": base64.b64encode(to_wav(samples, model.sample_rate)).decode("ascii"),
        "sample_rate": model.sample_rate,
        "duration_s": len(samples) / model.sample_rate,
        "words": len(words),
        "format": "wav",
    }


def handler(job):
    STATS["requests"] += 1
    job_input = job.get("input") or {}
    if not isinstance(job_input, dict):
        return {"error": f"input must be an object, not {type(job_input).__name__}"}
    try:
        action = job_input.get("action", "synthesize")
        if action == "health_check":
            return {"status": "healthy", "model_loaded": MODEL is not None}
        elif action == "synthesize":
            return synthesize(job, job_input)
        elif action == "get_status":
            return {"model_loaded": MODEL is not None, "model_loads": STATS["model_loads"], "requests": STATS["requests"], "loaded_at": STATS["loaded_at"]}
        else:
            return {"error": f"Unknown action: {action}; use health_check, synthesize or get_status"}
    except Exception as e:
        return {"error": str(e)}


if __name__ == "__main__":
    runpod.serverless.start({"handler": handler})
