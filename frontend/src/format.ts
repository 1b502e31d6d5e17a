// Exact decimal display, and calendar arithmetic in an IANA time zone.

/** "1234567.5" -> "1,234,567.5" without going through a float. */
export function credits(value: string): string {
  const negative = value.startsWith("-");
  const [whole, fraction] = (negative ? value.slice(1) : value).split(".");
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return (negative ? "-" : "") + grouped + (fraction ? "." + fraction : "");
}

/** A float for charts only (never for the numbers shown as text). */
export function approx(value: string): number {
  return Number(value);
}

export interface LocalDate {
  year: number;
  month: number; // 1-12
  day: number;
}

const partsFormat = new Map<string, Intl.DateTimeFormat>();

function formatter(zone: string): Intl.DateTimeFormat {
  let format = partsFormat.get(zone);
  if (!format) {
    format = new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    partsFormat.set(zone, format);
  }
  return format;
}

function wallClock(instant: number, zone: string): number {
  const parts: Record<string, number> = {};
  for (const part of formatter(zone).formatToParts(new Date(instant))) {
    if (part.type !== "literal") parts[part.type] = Number(part.value);
  }
  return Date.UTC(parts.year, parts.month - 1, parts.day, parts.hour, parts.minute, parts.second);
}

/** The instant of local midnight starting `date` in `zone`. */
export function midnight(date: LocalDate, zone: string): Date {
  const target = Date.UTC(date.year, date.month - 1, date.day);
  let guess = target;
  for (let i = 0; i < 3; i += 1) {
    guess += target - wallClock(guess, zone);
  }
  return new Date(guess);
}

/** The local date of an instant in `zone`. */
export function localDate(instant: Date, zone: string): LocalDate {
  const local = new Date(wallClock(instant.getTime(), zone));
  return { year: local.getUTCFullYear(), month: local.getUTCMonth() + 1, day: local.getUTCDate() };
}

/** `date` moved by whole days (calendar arithmetic). */
export function addDays(date: LocalDate, days: number): LocalDate {
  const moved = new Date(Date.UTC(date.year, date.month - 1, date.day + days));
  return { year: moved.getUTCFullYear(), month: moved.getUTCMonth() + 1, day: moved.getUTCDate() };
}

/** ISO weekday, Monday = 0. */
export function weekday(date: LocalDate): number {
  return (new Date(Date.UTC(date.year, date.month - 1, date.day)).getUTCDay() + 6) % 7;
}

export function toInput(date: LocalDate): string {
  const pad = (n: number, width = 2) => String(n).padStart(width, "0");
  return `${pad(date.year, 4)}-${pad(date.month)}-${pad(date.day)}`;
}

export function fromInput(value: string): LocalDate | null {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  if (!match) return null;
  return { year: Number(match[1]), month: Number(match[2]), day: Number(match[3]) };
}

/** A bucket's label: its start in `zone`, as precise as the granularity. */
export function bucketLabel(start: string, granularity: string, zone: string): string {
  const options: Intl.DateTimeFormatOptions = { timeZone: zone };
  if (granularity === "HOUR") Object.assign(options, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  else if (granularity === "MONTH") Object.assign(options, { year: "numeric", month: "short" });
  else Object.assign(options, { year: "numeric", month: "short", day: "numeric" });
  return new Intl.DateTimeFormat(undefined, options).format(new Date(start));
}

/** A timestamp in `zone`, to the second. */
export function timestamp(value: string, zone: string): string {
  return new Intl.DateTimeFormat(undefined, {
    timeZone: zone,
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hourCycle: "h23",
  }).format(new Date(value));
}
