import { describe, expect, it } from 'vitest';
import { maxCols, maxRows, parseClientMessage } from '../../../../server/protocol/terminal-wire.js';

describe('parseClientMessage', () => {
  it.each([
    ['{"type":"hello","v":1,"cols":120,"rows":40}', { type: 'hello', v: 1, cols: 120, rows: 40 }],
    ['{"type":"resize","cols":80,"rows":24}', { type: 'resize', cols: 80, rows: 24 }],
    [
      `{"type":"resize","cols":${maxCols},"rows":${maxRows}}`,
      { type: 'resize', cols: maxCols, rows: maxRows },
    ],
    ['{"type":"ack","bytes":65536}', { type: 'ack', bytes: 65536 }],
    ['{"type":"ping"}', { type: 'ping' }],
  ])('accepts %s', (text, message) => {
    expect(parseClientMessage(text)).toEqual({ ok: true, message });
  });

  it.each([
    ['{"type":"resize","cols":"80","rows":24}', /cols must be/],
    ['{"type":"resize","cols":0,"rows":24}', /cols must be/],
    ['{"type":"resize","cols":-1,"rows":24}', /cols must be/],
    ['{"type":"resize","cols":1.5,"rows":24}', /cols must be/],
    ['{"type":"resize","cols":1e9,"rows":24}', /cols must be/],
    [`{"type":"resize","cols":${2 ** 31},"rows":24}`, /cols must be/],
    [`{"type":"resize","cols":80,"rows":${maxRows + 1}}`, /rows/],
    ['{"type":"resize","cols":80}', /rows/],
    ['{"type":"hello","v":2,"cols":80,"rows":24}', /protocol version/],
    ['{"type":"ack","bytes":-5}', /ack.bytes/],
    ['{"type":"ack","bytes":"5"}', /ack.bytes/],
    ['{"type":"nope"}', /unknown control message type/],
    ['{"__proto__":{"type":"ping"}}', /unknown control message type/],
    ['{"constructor":{"prototype":{"type":"ping"}}}', /unknown control message type/],
    ['[1,2,3]', /JSON object/],
    ['null', /JSON object/],
    ['{"type":"resi', /not valid JSON/],
    ['', /not valid JSON/],
  ])('refuses %s with a reason', (text, reason) => {
    const result = parseClientMessage(text);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toMatch(reason);
  });

  it('refuses deep nesting and oversized messages without throwing', () => {
    const deep = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
    expect(parseClientMessage(deep).ok).toBe(false);
    expect(parseClientMessage(`{"type":"ping","pad":"${'x'.repeat(5000)}"}`)).toEqual({
      ok: false,
      reason: 'control message too long',
    });
  });

  it('does not pollute Object.prototype', () => {
    parseClientMessage('{"__proto__":{"polluted":true},"type":"ping"}');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
