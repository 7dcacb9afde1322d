// A small, strict parser of the Prometheus text exposition format (0.0.4),
// for the tests: it throws on any line the format does not allow, on a
// sample before or outside its family's TYPE, on a duplicate series, and on
// a histogram whose buckets are not cumulative or whose +Inf bucket is not
// its count. Returns Map(family name -> { type, help, samples: [{ name,
// labels: {..}, value }] }), plus get(name, labels) for one sample's value.

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function parseValue(s, where) {
	if (s === '+Inf') return Infinity;
	if (s === '-Inf') return -Infinity;
	if (s === 'NaN') return NaN;
	if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s))
		throw new Error(`${where}: bad value ${JSON.stringify(s)}`);
	return Number(s);
}

// Parses `{a="x",b="y"}` at s[i]; returns [labels, next index].
function parseLabels(s, i, where) {
	const labels = {};
	i++; // '{'
	for (;;) {
		if (s[i] === '}')
			return [labels, i + 1];
		const eq = s.indexOf('=', i);
		if (eq < 0) throw new Error(`${where}: no '=' in labels`);
		const name = s.slice(i, eq);
		if (!LABEL.test(name)) throw new Error(`${where}: bad label ${name}`);
		if (name in labels) throw new Error(`${where}: label ${name} twice`);
		if (s[eq + 1] !== '"') throw new Error(`${where}: unquoted value`);
		let j = eq + 2, v = '';
		for (; j < s.length && s[j] !== '"'; j++) {
			if (s[j] === '\\') {
				const e = s[++j];
				if (e === 'n') v += '\n';
				else if (e === '\\' || e === '"') v += e;
				else throw new Error(`${where}: bad escape \\${e}`);
			} else {
				v += s[j];
			}
		}
		if (s[j] !== '"') throw new Error(`${where}: unterminated value`);
		labels[name] = v;
		i = j + 1;
		if (s[i] === ',') i++;
		else if (s[i] !== '}') throw new Error(`${where}: expected , or }`);
	}
}

function familyOf(name, families) {
	if (families.has(name)) return name;
	for (const suffix of ['_bucket', '_sum', '_count']) {
		const base = name.endsWith(suffix) ? name.slice(0, -suffix.length) : null;
		if (base && families.has(base) &&
		    ['histogram', 'summary'].includes(families.get(base).type))
			return base;
	}
	return null;
}

export function parseExposition(text) {
	if (!text.endsWith('\n'))
		throw new Error('exposition does not end with a newline');
	const families = new Map();
	const seen = new Set();
	const done = new Set(); // families whose samples have ended
	let current = null;
	const lines = text.split('\n').slice(0, -1);
	lines.forEach((line, n) => {
		const where = `line ${n + 1}: ${JSON.stringify(line)}`;
		if (line === '') return;
		if (line.startsWith('#')) {
			const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
			if (!m) return; // another comment
			const [, kind, name, rest] = m;
			if (!NAME.test(name)) throw new Error(`${where}: bad name`);
			const f = families.get(name) ||
			    { type: 'untyped', help: null, samples: [], typed: false };
			if (kind === 'TYPE') {
				if (f.typed) throw new Error(`${where}: TYPE twice`);
				if (f.samples.length) throw new Error(`${where}: TYPE after samples`);
				if (!TYPES.has(rest)) throw new Error(`${where}: bad type`);
				f.type = rest;
				f.typed = true;
			} else {
				if (f.help !== null) throw new Error(`${where}: HELP twice`);
				f.help = rest;
			}
			families.set(name, f);
			return;
		}
		const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line);
		if (!m) throw new Error(`${where}: not a sample`);
		const name = m[1];
		let i = name.length, labels = {};
		if (line[i] === '{')
			[labels, i] = parseLabels(line, i, where);
		if (line[i] !== ' ') throw new Error(`${where}: no space before value`);
		const parts = line.slice(i + 1).split(' ');
		if (parts.length > 2) throw new Error(`${where}: trailing text`);
		const value = parseValue(parts[0], where);
		if (parts.length === 2 && !/^-?\d+$/.test(parts[1]))
			throw new Error(`${where}: bad timestamp`);
		const fam = familyOf(name, families);
		if (!fam) throw new Error(`${where}: sample without a TYPE/HELP`);
		if (fam !== current) {
			if (done.has(fam)) throw new Error(`${where}: family split`);
			if (current) done.add(current);
			current = fam;
		}
		const key = name + JSON.stringify(Object.entries(labels).sort());
		if (seen.has(key)) throw new Error(`${where}: duplicate series`);
		seen.add(key);
		families.get(fam).samples.push({ name, labels, value });
	});
	for (const [name, f] of families) {
		if (f.type !== 'histogram') continue;
		const buckets = f.samples.filter((s) => s.name === `${name}_bucket`);
		const count = f.samples.find((s) => s.name === `${name}_count`);
		if (!count || !f.samples.find((s) => s.name === `${name}_sum`))
			throw new Error(`${name}: histogram without _sum or _count`);
		let prevLe = -Infinity, prev = 0;
		for (const b of buckets) {
			const le = parseValue(b.labels.le, `${name} le`);
			if (!(le > prevLe)) throw new Error(`${name}: le not increasing`);
			if (b.value < prev) throw new Error(`${name}: buckets not cumulative`);
			prevLe = le;
			prev = b.value;
		}
		if (prevLe !== Infinity || prev !== count.value)
			throw new Error(`${name}: +Inf bucket missing or not the count`);
	}
	return Object.assign(families, {
		value(name, labels = {}) {
			const fam = familyOf(name, families);
			const s = fam && families.get(fam).samples.find((x) =>
			    x.name === name && Object.keys(labels).every((k) =>
			    x.labels[k] === labels[k]));
			if (!s) throw new Error(`no sample ${name} ${JSON.stringify(labels)}`);
			return s.value;
		},
	});
}
