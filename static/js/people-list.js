/** Who is in the room right now: from `presence`, then `user_joined` and `user_left`. */

import { h } from "./dom.js";
import { gettext } from "./i18n.js";

export class PeopleList {
  constructor({ list, count, me }) {
    this.list = list;
    this.count = count;
    this.me = me;
    this.people = new Map();
  }

  set(users) {
    this.people = new Map(users.map((user) => [String(user.userId), String(user.userName ?? "")]));
    this.render();
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
