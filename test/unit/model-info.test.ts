import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { CHAT_PROMPT_VERSION, PROMPT_TEMPLATE_VERSION, selectPrompt } from '../../src/core/prompts';
import { adapterDir, ALIGNED_MODELS, BASE_MODELS, fetchedModelDir, isFetched } from '../../src/engine/baseModels';
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
    assert.deepEqual(
      trainedTasks({ prompt_template_version: PROMPT_TEMPLATE_VERSION, tasks: ['select'] }),
      ['select'],
      'no format: the text format (older models)',
    );
    assert.deepEqual(
      trainedTasks({ prompt_template_version: PROMPT_TEMPLATE_VERSION - 1, tasks: ['select'] }),
      [],
      'an older template version: not trained on today’s prompts',
    );
    assert.deepEqual(trainedTasks({ prompt_format: 'chat', prompt_template_version: CHAT_PROMPT_VERSION + 1, tasks: ['select'] }), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a fetched model counts only while it is what the model list pins now: the base wheel, the shipped adapter', () => {
  const cache = mkdtempSync(path.join(os.tmpdir(), 'pal-cache-'));
  const saved = process.env.PAL_STUDIO_CACHE;
  process.env.PAL_STUDIO_CACHE = cache;
  try {
    const write = (name: string, source: object, onnx: boolean) => {
      const dir = fetchedModelDir(name);
      mkdirSync(path.join(dir, 'onnx'), { recursive: true });
      writeFileSync(path.join(dir, 'config.json'), '{}');
      if (onnx) writeFileSync(path.join(dir, 'onnx', 'model.onnx'), '');
      else rmSync(path.join(dir, 'onnx', 'model.onnx'), { force: true });
      writeFileSync(path.join(dir, 'source.json'), JSON.stringify(source));
    };
    assert.equal(isFetched('smollm2-135m'), false, 'nothing there');
    write('smollm2-135m', { sha256: BASE_MODELS['smollm2-135m']!.sha256 }, false);
    assert.equal(isFetched('smollm2-135m'), true);
    write('smollm2-135m', { sha256: '0'.repeat(64) }, false);
    assert.equal(isFetched('smollm2-135m'), false, 'converted from another wheel');
    const adapter = path.join(adapterDir(ALIGNED_MODELS['pal-smollm2-135m']!), 'adapter_model.safetensors');
    const hex = createHash('sha256').update(readFileSync(adapter)).digest('hex');
    write('pal-smollm2-135m', { adapter_sha256: hex }, true);
    assert.equal(isFetched('pal-smollm2-135m'), true);
    assert.equal(isFetched('pal-smollm2-135m'), true, 'the second answer (the remembered hash) is the same');
    write('pal-smollm2-135m', { adapter_sha256: hex }, false);
    assert.equal(isFetched('pal-smollm2-135m'), false, 'no ONNX export: not usable for inference');
    write('pal-smollm2-135m', { adapter_sha256: 'f'.repeat(64) }, true);
    assert.equal(isFetched('pal-smollm2-135m'), false, 'merged from an older adapter');
  } finally {
    if (saved === undefined) delete process.env.PAL_STUDIO_CACHE;
    else process.env.PAL_STUDIO_CACHE = saved;
    rmSync(cache, { recursive: true, force: true });
  }
});
