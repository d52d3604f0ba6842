/**
 * Who is in the room right now: from `presence`, then `user_joined` and `user_left`. While the
 * connection is down the list is shown as last known (dimmed, with a note) until the next `presence`.
 */

import { h } from "./dom.js";
import { gettext } from "./i18n.js";

export class PeopleList {
  constructor({ list, count, staleNote, me }) {
    this.list = list;
    this.count = count;
    this.staleNote = staleNote;
    this.me = me;
    this.people = new Map();
  }

  set(users) {
    this.people = new Map(users.map((user) => [String(user.userId), String(user.userName ?? "")]));
    this.markStale(false);
    this.render();
  }

  /** The connection is down: who was here may have left (or others come) meanwhile. */
  markStale(stale = true) {
    this.list.classList.toggle("is-stale", stale);
    this.staleNote.hidden = !stale;
  }

  join(userId, userName) {
    const isNew = !this.people.has(userId);
    this.people.set(userId, userName);
    this.render();
    return isNew;
  }

  leave(userId) {
    const wasHere = this.people.delete(userId);
    this.render();
    return wasHere;
  }

  render() {
    const entries = [...this.people].sort(([idA, nameA], [idB, nameB]) => {
      if (idA === this.me.id) return -1;
      if (idB === this.me.id) return 1;
      return nameA.localeCompare(nameB);
    });
    this.list.replaceChildren(
      ...entries.map(([id, name]) =>
        h(
          "li",
          { class: "person" },
          h("span", { class: "avatar", attrs: { "aria-hidden": "true" }, text: initials(name) }),
          h("span", { class: "person-name", text: name }),
          id === this.me.id ? h("span", { class: "person-me", text: gettext("(tú)") }) : null,
        ),
      ),
    );
    this.count.textContent = String(entries.length);
  }
}

function initials(name) {
  const words = name.trim().split(/\s+/).filter(Boolean);
  return (words.length > 1 ? words[0][0] + words.at(-1)[0] : (words[0] ?? "?").slice(0, 2)).toUpperCase();
}
