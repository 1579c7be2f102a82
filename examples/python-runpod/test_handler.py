"""Tests handler() directly with `runpod` replaced by a stub, so they run where the SDK is not installed."""

import base64
import io
import sys
import types
import unittest
import wave

progress_calls = []
started = []
stub = types.ModuleType("runpod")
stub.serverless = types.SimpleNamespace(
    start=lambda config: started.append(config),
    progress_update=lambda job, value: progress_calls.append((job["id"], value)),
)
sys.modules["runpod"] = stub

import handler  # noqa: E402  (after the stub, as the real SDK would be imported)

MODEL_AT_IMPORT = handler.MODEL


class HandlerTest(unittest.TestCase):
    def setUp(self):
        progress_calls.clear()

    def test_importing_starts_nothing_and_loads_no_model(self):
        self.assertEqual(started, [])
        self.assertIsNone(MODEL_AT_IMPORT)

    def test_health_check_does_not_load_the_model(self):
        loads = handler.STATS["model_loads"]
        out = handler.handler({"id": "h1", "input": {"action": "health_check"}})
        self.assertEqual(out, {"status": "healthy", "model_loaded": handler.MODEL is not None})
        self.assertEqual(handler.STATS["model_loads"], loads)

    def test_synthesize_returns_a_wav_with_sound_and_reports_progress_per_word(self):
        out = handler.handler({"id": "s1", "input": {"action": "synthesize", "text": "hello serverless world"}})
        self.assertNotIn("error", out)
        with wave.open(io.BytesIO(base64.b64decode(out["audio_base64"]))) as w:
            self.assertEqual(w.getframerate(), out["sample_rate"])
            self.assertEqual(w.getsampwidth(), 2)
            frames = w.readframes(w.getnframes())
            self.assertAlmostEqual(w.getnframes() / w.getframerate(), out["duration_s"])
        peak = max(abs(int.from_bytes(frames[i:i + 2], "little", signed=True)) for i in range(0, len(frames), 2))
        self.assertGreater(peak, 5000)
        self.assertEqual(progress_calls, [("s1", {"word": 1, "of": 3}), ("s1", {"word": 2, "of": 3}), ("s1", {"word": 3, "of": 3})])

    def test_the_model_loads_once_across_requests(self):
        handler.handler({"id": "a", "input": {"text": "one"}})
        handler.handler({"id": "b", "input": {"text": "two"}})
        status = handler.handler({"id": "c", "input": {"action": "get_status"}})
        self.assertTrue(status["model_loaded"])
        self.assertEqual(status["model_loads"], 1)

    def test_bad_inputs_return_errors(self):
        self.assertEqual(handler.handler({"id": "e1", "input": {"action": "dance"}}),
                         {"error": "Unknown action: dance; use health_check, synthesize or get_status"})
        self.assertEqual(handler.handler({"id": "e2", "input": {"action": "synthesize", "text": "  "}}),
                         {"error": "text is required and must not be empty"})
        self.assertEqual(handler.handler({"id": "e3", "input": {"text": "x" * 2001}}),
                         {"error": "text has 2001 characters; at most 2000 are allowed"})
        self.assertEqual(handler.handler({"id": "e4", "input": {"action": "synthesize"}}),
                         {"error": "text is required and must not be empty"})
        self.assertEqual(handler.handler({"id": "e5", "input": {"action": "synthesize", "text": 42}}),
                         {"error": "text is required and must not be empty"})

    def test_an_input_that_is_not_an_object_is_refused(self):
        self.assertEqual(handler.handler({"id": "e6", "input": ["not", "a", "dict"]}),
                         {"error": "input must be an object, not list"})
        self.assertEqual(handler.handler({"id": "e7", "input": "hello"}),
                         {"error": "input must be an object, not str"})


if __name__ == "__main__":
    unittest.main()
