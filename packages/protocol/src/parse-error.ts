/**
 * A wire value that does not have the shape RunPod's protocol prescribes.
 *
 * `field` is a dotted path into the value (`policy.ttl`, `[2].id`, `body` for the whole value) and
 * `rule` states what was expected, so a gateway can answer 400 with a message that names the culprit.
 */
export class ProtocolParseError extends Error {
  override readonly name = 'ProtocolParseError';
  /** Dotted path of the offending value, e.g. `policy.ttl` or `[2].id`. */
  readonly field: string;
  /** What the value must be, e.g. `must be a string`. */
  readonly rule: string;

  constructor(field: string, rule: string, options?: { cause?: unknown }) {
    super(`${field}: ${rule}`, options);
    this.field = field;
    this.rule = rule;
  }
}
