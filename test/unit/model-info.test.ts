import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { CHAT_PROMPT_VERSION, PROMPT_TEMPLATE_VERSION, selectPrompt } from '../../src/core/prompts';
import { palInfo, promptFormatFor, readPalInfo, trainedTasks, writePalInfo } from '../../src/engine/modelInfo';

const chatTokenizer = {
  chat_template: '{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}',
  apply_chat_template: (messages: { role: string; content: string }[], options: { add_generation_prompt: boolean }) =>
    messages.map((m) => `<${m.role}>${m.content}`).join('') + (options.add_generation_prompt ? '<assistant>' : ''),
};
const plainTokenizer = { apply_chat_template: () => assert.fail('a tokenizer without a chat template is never asked to render one') };

test('the prompt format of a model folder: pal.json first, else chat when the tokenizer has a chat template', () => {
  assert.equal(promptFormatFor({}, chatTokenizer).kind, 'chat', 'a chat model PAL Studio did not train');
  assert.equal(promptFormatFor({}, plainTokenizer).kind, 'text', 'the embedded default model: no chat template');
  assert.equal(promptFormatFor({ prompt_format: 'text' }, chatTokenizer).kind, 'text', 'a model trained in the text format keeps it');
  assert.throws(() => promptFormatFor({ prompt_format: 'chat' }, plainTokenizer), /trained with chat prompts, but its tokenizer has no chat template/);
  const f = promptFormatFor({ prompt_format: 'chat' }, chatTokenizer);
  assert.equal(selectPrompt({ personas: ['i sail .'], history: ['hi'] }, f).slice(-11), '<assistant>');
});

test('pal.json records the format and its version; tasks count only in the current version of that format', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pal-info-'));
  try {
    assert.deepEqual(await readPalInfo(dir), {}, 'no pal.json: an empty note');
    await writePalInfo(dir, palInfo('chat', ['select', 'generate'], 320));
    const info = await readPalInfo(dir);
    assert.deepEqual(info, { prompt_format: 'chat', prompt_template_version: CHAT_PROMPT_VERSION, tasks: ['select', 'generate'], max_length: 320 });
    assert.deepEqual(trainedTasks(info), ['select', 'generate']);
    assert.deepEqual(trainedTasks({ prompt_template_version: PROMPT_TEMPLATE_VERSION, tasks: ['select'] }), ['select'], 'no format: the text format (older models)');
    assert.deepEqual(trainedTasks({ prompt_template_version: PROMPT_TEMPLATE_VERSION - 1, tasks: ['select'] }), [], 'an older template version: not trained on today’s prompts');
    assert.deepEqual(trainedTasks({ prompt_format: 'chat', prompt_template_version: CHAT_PROMPT_VERSION + 1, tasks: ['select'] }), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
