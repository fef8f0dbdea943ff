package legacy

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	seedCustomers = 80
	seedOrders    = 200
	firstOrderNo  = 500001
	firstCustNo   = 100001
	firstArtNo    = 1001
	historyDays   = 120
)

type seedCategory struct {
	code     string
	nouns    []string
	min, max int // euros
	blurb    string
}

var seedCategories = []seedCategory{
	{"WERKZEUG", []string{"Akku-Bohrschrauber", "Schlosserhammer", "Schraubendreher-Satz", "Wasserwaage", "Kombizange", "Fuchsschwanzsäge", "Maßband 5 m", "Bit-Set 32-tlg.", "Werkzeugkoffer", "Schleifmaschine"}, 4, 189, "für Heimwerker und Handwerk"},
	{"GARTEN", []string{"Gartenschere", "Rasenmäher", "Gießkanne 10 l", "Schlauchtrommel", "Pflanzkübel", "Laubrechen", "Hochbeet", "Spaten", "Heckenschere", "Kompostbehälter"}, 6, 349, "für Garten, Balkon und Terrasse"},
	{"HAUSHALT", []string{"Bratpfanne 28 cm", "Messerblock", "Wasserkocher", "Kaffeemühle", "Schneidebrett", "Topfset 5-tlg.", "Küchenwaage", "Brotkasten", "Geschirrtücher 3er", "Salatschleuder"}, 5, 129, "für Küche und Haushalt"},
	{"ELEKTRO", []string{"LED-Leuchtmittel E27", "Steckdosenleiste 6-fach", "Verlängerungskabel 10 m", "Bewegungsmelder", "Taschenlampe", "Funkschalter-Set", "Rauchmelder", "USB-Ladegerät", "Zeitschaltuhr", "Außenleuchte"}, 3, 99, "für Haus und Werkstatt"},
	{"BUERO", []string{"Aktenordner 10er", "Kugelschreiber-Set", "Locher", "Heftgerät", "Schreibtischlampe", "Briefablage", "Notizblöcke 5er", "Etikettendrucker", "Aktenvernichter", "Bürostuhl"}, 2, 259, "für Büro und Homeoffice"},
	{"SPORT", []string{"Yogamatte", "Springseil", "Kurzhantel-Set", "Fahrradhelm", "Trinkflasche 0,75 l", "Laufrucksack", "Fitnessband", "Fußball", "Tischtennisschläger", "Rucksack 30 l"}, 4, 149, "für Sport und Freizeit"},
	{"SPIELWAREN", []string{"Holzeisenbahn", "Puzzle 1000 Teile", "Bauklötze 100 Stk.", "Kreisel", "Plüschbär", "Brettspiel Familienspaß", "Murmelbahn", "Malkasten", "Kaufladen", "Experimentierkasten"}, 3, 119, "für Kinder ab 3 Jahren"},
}

var (
	seedBrands   = []string{"Müller", "Kästner", "Brandt", "Weiß & Söhne", "Nordwerk", "Hofmann", "Großmann", "Becker", "Alpenstahl", "Rheinland"}
	seedVariants = []string{"", "Profi", "Classic", "Komfort", "Eco", "Premium", "Basic", "XL", "Mini", "Plus"}
	seedFirst    = []string{"Anna", "Jürgen", "Sabine", "Klaus", "Monika", "Günther", "Petra", "Uwe", "Birgit", "Jörg", "Claudia", "Stefan", "Käthe", "Dieter", "Renate", "Thomas"}
	seedLast     = []string{"Schmidt", "Müller", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Schäfer", "Köhler", "Bauer", "Krüger", "Hoffmann", "Schulz", "Groß", "Lehmann", "Böhm"}
	seedCities   = []string{"München", "Köln", "Düsseldorf", "Nürnberg", "Lübeck", "Würzburg", "Hamburg", "Berlin", "Göttingen", "Saarbrücken", "Osnabrück", "Freiburg"}
	seedSentence = []string{
		"Der Artikel {name} ist ein bewährter Klassiker {blurb}.",
		"Gefertigt aus robusten, langlebigen Materialien und sorgfältig verarbeitet, überzeugt er im täglichen Einsatz.",
		"Die durchdachte Konstruktion sorgt für eine einfache Handhabung, auch bei längerem Gebrauch.",
		"Lieferumfang: {name}, Bedienungsanleitung in deutscher Sprache, Garantiekarte.",
		"Hinweis: Abbildung ähnlich, Farbe und Ausführung können je nach Charge leicht abweichen.",
		"Geprüfte Sicherheit (GS) und CE-konform; Herstellergarantie 24 Monate ab Kaufdatum.",
		"Pflegehinweis: nur mit einem feuchten Tuch reinigen, keine scharfen Reinigungsmittel verwenden.",
		"Unser Tipp: kombinieren Sie {name} mit passendem Zubehör aus unserem Sortiment {blurb}.",
		"Versandfertig in der Regel innerhalb von 2-3 Werktagen; Sperrgut wird per Spedition geliefert.",
		"Kundenbewertung: 4,5 von 5 Sternen bei über 120 Bewertungen in unserem Onlineshop.",
	}
)

type seedArticle struct {
	artNr, bez, beschr, kat, ean string
	sortNr                       int
	preisCt                      int64
	bestand                      int
}

type seedCustomer struct {
	custNo, name, ort, email string
	seit                     int64
}

type seedLine struct {
	artNr   string
	menge   int
	preisCt int64
}

type seedOrder struct {
	ordNo              int64
	custNo             string
	sts                int
	angelegt, geaendrt int64
	lines              []seedLine
}

type seedData struct {
	articles  []seedArticle
	customers []seedCustomer
	orders    []seedOrder
}

// generateSeed builds the demo data. It is a pure function of its inputs:
// the same seed, product count and clock reading give the same data.
func generateSeed(seed int64, products int, now time.Time) seedData {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
	now = now.Truncate(time.Minute)
	var d seedData
	for i := range products {
		c := seedCategories[i%len(seedCategories)]
		noun := c.nouns[rng.IntN(len(c.nouns))]
		name := seedBrands[rng.IntN(len(seedBrands))] + " " + noun
		if v := seedVariants[rng.IntN(len(seedVariants))]; v != "" {
			name += " " + v
		}
		euros := c.min + rng.IntN(c.max-c.min+1)
		cents := int64(euros)*100 + []int64{99, 49, 90, 95, 0}[rng.IntN(5)]
		stock := 6 + rng.IntN(145)
		switch r := rng.IntN(100); {
		case r < 12:
			stock = 0
		case r < 25:
			stock = 1 + rng.IntN(5)
		}
		fill := strings.NewReplacer("{name}", name, "{blurb}", c.blurb)
		var sb strings.Builder
		sb.WriteString(fill.Replace(seedSentence[0]))
		for _, j := range rng.Perm(len(seedSentence) - 1)[:5+rng.IntN(4)] {
			sb.WriteByte(' ')
			sb.WriteString(fill.Replace(seedSentence[j+1]))
		}
		d.articles = append(d.articles, seedArticle{
			artNr:   "ART-" + strconv.Itoa(firstArtNo+i),
			sortNr:  i + 1,
			bez:     name,
			beschr:  sb.String(),
			kat:     c.code,
			ean:     ean13(rng),
			preisCt: cents,
			bestand: stock,
		})
	}
	for i := range seedCustomers {
		first, last := seedFirst[rng.IntN(len(seedFirst))], seedLast[rng.IntN(len(seedLast))]
		d.customers = append(d.customers, seedCustomer{
			custNo: strconv.Itoa(firstCustNo + i),
			name:   first + " " + last,
			ort:    seedCities[rng.IntN(len(seedCities))],
			email:  asciiFold(strings.ToLower(first+"."+last)) + strconv.Itoa(i) + "@example.de",
			seit:   now.Add(-time.Duration(365+rng.IntN(3650)) * 24 * time.Hour).Unix(),
		})
	}
	for range seedOrders {
		o := seedOrder{custNo: d.customers[rng.IntN(len(d.customers))].custNo}
		created := now.Add(-time.Duration(rng.IntN(historyDays*24*60)+60) * time.Minute)
		o.angelegt = created.Unix()
		switch r := rng.IntN(100); {
		case r < 10:
			o.sts = 1
		case r < 26:
			o.sts = 3
		case r < 38:
			o.sts = 7
		case r < 88:
			o.sts = 9
		default:
			o.sts = 99
		}
		changed := created
		if o.sts != 1 && o.sts != 3 {
			changed = created.Add(time.Duration(rng.IntN(72*60)) * time.Minute)
			if changed.After(now) {
				changed = now
			}
		}
		o.geaendrt = changed.Unix()
		used := map[int]bool{}
		for range 1 + rng.IntN(4) {
			a := rng.IntN(len(d.articles))
			if used[a] {
				continue
			}
			used[a] = true
			o.lines = append(o.lines, seedLine{artNr: d.articles[a].artNr, menge: 1 + rng.IntN(3), preisCt: d.articles[a].preisCt})
		}
		d.orders = append(d.orders, o)
	}
	slices.SortStableFunc(d.orders, func(a, b seedOrder) int { return cmp.Compare(a.angelegt, b.angelegt) })
	for i := range d.orders {
		d.orders[i].ordNo = int64(firstOrderNo + i)
	}
	return d
}

// ean13 draws a German-prefixed EAN-13 with a valid check digit.
func ean13(rng *rand.Rand) string {
	b := []byte("400")
	for range 9 {
		b = append(b, byte('0'+rng.IntN(10)))
	}
	sum := 0
	for i, c := range b {
		w := 1
		if i%2 == 1 {
			w = 3
		}
		sum += int(c-'0') * w
	}
	return string(append(b, byte('0'+(10-sum%10)%10)))
}

func asciiFold(s string) string {
	return strings.NewReplacer("ä", "ae", "ö", "oe", "ü", "ue", "ß", "ss", " ", "").Replace(s)
}

// seed writes the demo data on first start and records that it did, in one
// transaction, so a crash mid-seed leaves an empty shop that seeds again and
// a second start (or a concurrent one) never seeds twice.
func (s *Shop) seed(ctx context.Context) (bool, error) {
	seeded := false
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var v string
		err := tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'seeded_at'`).Scan(&v)
		if err == nil {
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		now := s.now()
		d := generateSeed(s.cfg.Seed, s.cfg.Products, now)
		for _, c := range d.customers {
			if _, err := tx.ExecContext(ctx, `INSERT INTO kunde (cust_no, name, ort, email, seit) VALUES (?, ?, ?, ?, ?)`,
				c.custNo, c.name, c.ort, c.email, c.seit); err != nil {
				return fmt.Errorf("customer %s: %w", c.custNo, err)
			}
		}
		// The articles must exist before the historic order lines that
		// reference them; their change numbers are bumped again below so
		// the catalog's sequence follows the order history.
		for _, a := range d.articles {
			if _, err := tx.ExecContext(ctx, `INSERT INTO artikel (art_nr, sort_nr, bez, beschr, kat, ean, preis_ct, bestand, geaendert, chg_seq)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				a.artNr, a.sortNr, a.bez, a.beschr, a.kat, a.ean, a.preisCt, a.bestand, now.Unix(), -int64(a.sortNr)); err != nil {
				return fmt.Errorf("article %s: %w", a.artNr, err)
			}
		}
		byChange := slices.Clone(d.orders)
		slices.SortStableFunc(byChange, func(a, b seedOrder) int { return cmp.Compare(a.geaendrt, b.geaendrt) })
		for _, o := range byChange {
			seq, err := nextSeq(ctx, tx)
			if err != nil {
				return err
			}
			var total int64
			for _, l := range o.lines {
				total += int64(l.menge) * l.preisCt
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO auftrag (ord_no, cust_no, sts_cd, summe_ct, angelegt, geaendert, chg_seq)
				VALUES (?, ?, ?, ?, ?, ?, ?)`, o.ordNo, o.custNo, o.sts, total, o.angelegt, o.geaendrt, seq); err != nil {
				return fmt.Errorf("order %d: %w", o.ordNo, err)
			}
			for i, l := range o.lines {
				if _, err := tx.ExecContext(ctx, `INSERT INTO auftrag_pos (ord_no, pos_nr, art_nr, menge, preis_ct) VALUES (?, ?, ?, ?, ?)`,
					o.ordNo, i+1, l.artNr, l.menge, l.preisCt); err != nil {
					return fmt.Errorf("order %d line %d: %w", o.ordNo, i+1, err)
				}
			}
		}
		for _, a := range d.articles {
			seq, err := nextSeq(ctx, tx)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE artikel SET chg_seq = ? WHERE art_nr = ?`, seq, a.artNr); err != nil {
				return fmt.Errorf("article %s: %w", a.artNr, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('seeded_at', ?), ('seed', ?), ('products', ?)`,
			now.UTC().Format(time.RFC3339), strconv.FormatInt(s.cfg.Seed, 10), strconv.Itoa(s.cfg.Products)); err != nil {
			return err
		}
		seeded = true
		return nil
	})
	return seeded, err
}

// nextSeq takes the next change sequence number. It must run inside the
// write transaction that makes the change it numbers.
func nextSeq(ctx context.Context, tx *sql.Tx) (int64, error) {
	var seq int64
	if err := tx.QueryRowContext(ctx, `UPDATE chg_counter SET val = val + 1 WHERE id = 1 RETURNING val`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("taking change sequence: %w", err)
	}
	return seq, nil
}
