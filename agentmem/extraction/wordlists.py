"""Word lists for the offline extractor (``offline.py``) and the salience gate (``turns.py``): what may
count as a language, a job title, a rule.

Lists are lowercase; the extractor compares lowercased words. They are deliberately conservative: a word
missing from a list only means a statement is not extracted, never that something wrong is.
"""

from __future__ import annotations


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Human languages only: "answer in Markdown" or "I speak Python" must not set a language.
HUMAN_LANGUAGES = _words(
    """
    afrikaans akan albanian amharic arabic armenian assamese aymara azerbaijani azeri balochi bambara
    basque belarusian bengali berber bislama bosnian breton bulgarian burmese cantonese catalan cebuano
    chechen cherokee chichewa chinese cornish corsican creole croatian czech danish dari dutch dzongkha
    english esperanto estonian ewe faroese farsi fijian filipino finnish flemish french frisian fula
    gaelic galician georgian german greek greenlandic guarani gujarati haitian hakka hausa hawaiian
    hebrew hindi hmong hokkien hungarian icelandic igbo ilocano indonesian inuktitut irish italian
    japanese javanese kannada kashmiri kazakh khmer kikuyu kinyarwanda kirundi konkani korean kurdish
    kurmanji kyrgyz lao latin latvian lingala lithuanian luxembourgish macedonian maithili malagasy malay
    malayalam maltese mandarin manx maori marathi mongolian navajo ndebele nepali norwegian occitan odia
    oriya oromo pashto patois persian polish portuguese punjabi quechua romanian romansh russian sami
    samoan sanskrit scots serbian sesotho setswana shanghainese shona sindhi sinhala sinhalese slovak
    slovene slovenian somali sorani spanish sundanese swahili swedish tagalog tahitian taiwanese tajik
    tamazight tamil tatar telugu thai tibetan tigrinya tongan tswana turkish turkmen twi ukrainian urdu
    uyghur uzbek vietnamese welsh wolof xhosa yiddish yoruba zulu
    """
)

# Capitalised words that follow "I'm" but are not names: nationalities, regions, ethnicities, religions,
# politics, diets, and adjectives a user may capitalise. Used even after a greeting ("Hi, I'm French").
NOT_NAMES = HUMAN_LANGUAGES | _words(
    """
    afghan algerian american andorran angolan argentine argentinian australian austrian bahamian bahraini
    bangladeshi barbadian belgian belizean beninese bhutanese bolivian botswanan brazilian british
    bruneian burkinabe burundian cambodian cameroonian canadian chadian chilean colombian congolese
    costa cuban cypriot djiboutian dominican ecuadorian egyptian emirati eritrean ethiopian filipina
    gabonese gambian ghanaian grenadian guatemalan guinean guyanese honduran indian iranian iraqi
    israeli ivorian jamaican jordanian kenyan kosovar kuwaiti laotian lebanese liberian libyan malawian
    malaysian maldivian malian mauritanian mauritian mexican moldovan monegasque montenegrin moroccan
    mozambican namibian nepalese nicaraguan nigerian nigerien omani pakistani palestinian panamanian
    paraguayan peruvian qatari rwandan salvadoran saudi scottish senegalese singaporean slovakian
    sudanese surinamese swazi swiss syrian tanzanian togolese trinidadian tunisian ugandan uruguayan
    venezuelan yemeni zambian zimbabwean
    aussie kiwi brit scot canuck yank yankee texan californian floridian londoner parisian berliner
    bavarian sicilian sardinian neapolitan venetian quebecois alaskan midwestern southern northern
    eastern western new
    african asian european arab latino latina latinx hispanic caucasian black white indigenous native
    aboriginal inuit romani slavic nordic scandinavian balkan caribbean mediterranean amazigh
    pashtun tigrayan amhara polynesian jewish rican lankan sri south north puerto zealander
    catholic protestant christian muslim moslem islamic hindu buddhist sikh jain mormon orthodox anglican
    baptist methodist lutheran presbyterian evangelical pentecostal adventist episcopalian quaker amish
    mennonite unitarian atheist agnostic pagan wiccan shinto taoist zoroastrian bahai rastafarian sunni
    shia shiite calvinist zionist religious secular spiritual
    democrat republican conservative liberal libertarian socialist communist progressive moderate
    independent labour tory centrist leftist marxist anarchist feminist
    vegan vegetarian pescatarian pescetarian keto paleo kosher halal flexitarian teetotal sober
    not sorry just also still so here there back sure fine good great happy looking working trying going
    done glad ready afraid currently really very actually always never only ok okay well alright right
    wrong busy tired confused stuck lost curious excited interested new home online offline available
    free single married divorced engaged pregnant retired unemployed deaf blind disabled autistic gay
    straight queer trans nonbinary male female introvert extrovert human
    monday tuesday wednesday thursday friday saturday sunday tomorrow tonight today later anytime soon
    """
)

# Head nouns of job titles: the last word of "I'm a ...". "Data scientist", "PhD student", "nurse".
ROLE_HEADS = _words(
    """
    accountant actor actress actuary admin administrator advisor adviser agent analyst animator
    apprentice architect artist assistant associate astronaut astronomer attorney auditor author baker
    banker barber barista barrister bartender biologist blogger bookkeeper broker builder butcher buyer
    ceo cfo chef chemist cio cleaner clerk clinician coach coder cofounder co-founder columnist composer
    consultant contractor cook coo coordinator copywriter counsellor counselor cto curator dancer
    dentist deputy designer detective dev developer devops dietitian dietician director doctor driver
    economist editor educator electrician engineer entrepreneur executive farmer firefighter founder
    freelancer gardener geologist guard hairdresser handyman illustrator inspector instructor intern
    interpreter investigator janitor journalist judge landscaper lawyer lead lecturer librarian
    lifeguard linguist maintainer manager marketer mathematician mechanic medic midwife musician nanny
    novelist nurse officer operator optician owner painter paralegal paramedic pharmacist photographer
    physician physicist physiotherapist pilot planner plumber podcaster poet politician postdoc
    president principal producer professor programmer psychiatrist psychologist publisher radiologist
    realtor receptionist recruiter rep representative reporter researcher salesman salesperson
    saleswoman scientist sculptor secretary singer soldier solicitor specialist statistician
    strategist streamer student supervisor surgeon tailor teacher technician tester therapist trader
    trainee trainer translator tutor undergrad undergraduate veterinarian vet vp waiter waitress
    welder writer youtuber
    """
)
# Suffixes that only make job titles ("cardiologist", "statistician", "photographer", "bartender").
ROLE_SUFFIXES = ("ologist", "ician", "grapher", "iatrist", "smith", "wright", "keeper", "tender")
# Never a job title, whatever the suffix or list says: diets, beliefs, family, fandom, being a user.
NOT_ROLES = _words(
    """
    vegan vegetarian pescatarian carnivore omnivore apologist contender pretender mother father brother
    sister daughter son parent partner husband wife mom mum dad member user customer client beginner
    newbie novice newcomer learner fan lover believer follower enthusiast fanatic addict nerd geek
    person people human optimist pessimist perfectionist realist idealist minimalist introvert extrovert
    """
) | (NOT_NAMES - ROLE_HEADS)

# Verbs that make "always/never/don't <verb> ..." an instruction to the assistant.
RULE_VERBS = _words(
    """
    abbreviate add address annotate answer apologise apologize ask assume avoid begin bold call
    capitalize change check cite comment compliment correct curse define delete digress document
    double-check emphasize emphasise end exaggerate explain flag flatter follow format give greet guess
    hallucinate hedge highlight include indent invent keep label lecture leave lie link list mark mention
    moralize moralise number offer omit output pad praise prefix provide put quote ramble recommend
    refer remind remove repeat rephrase reply respond return rewrite send show simplify skip sort
    speak speculate spell start stick suggest sugarcoat summarise summarize swear switch talk test
    translate use validate verify waffle warn wrap write
    """
)
# Those of them that are a whole rule on their own ("never apologize", "don't guess").
INTRANSITIVE_RULE_VERBS = _words(
    """
    apologise apologize assume curse digress exaggerate explain guess hallucinate hedge lecture lie
    moralise moralize ramble speculate sugarcoat summarise summarize swear waffle double-check
    """
)
# What "always/never/don't be ..." may be followed by for it to be a rule about answers.
STYLE_ADJECTIVES = _words(
    """
    accurate apologetic blunt brief candid careful casual chatty cheerful clear concise condescending
    consistent creative critical cryptic detailed direct encouraging enthusiastic explicit formal frank
    friendly funny generic gentle harsh honest informal kind literal long-winded neutral objective
    patient patronising patronizing pedantic polite precise preachy professional pushy redundant
    repetitive rude sarcastic serious short skeptical specific succinct supportive sycophantic technical
    terse thorough transparent upfront vague verbose wordy
    """
)
# "I'm a fan of the developer": a phrase with these before its last word is not a job title.
FUNCTION_WORDS = _words("of the a an my your his her their our to with who")
# "I prefer not to say", "I prefer it to be short", "I prefer people to call me Sam": not two options.
NOT_AN_OPTION = _words("not to it them you him her me us this that")
INFINITIVES = RULE_VERBS | _words("be have do go get make know see work come stay")

# Abbreviations a period may follow without ending the sentence. Those that lead into what follows
# ("St. Mary's", "Dr. Lee", "e.g. tabs") end one only before a sentence opener; those that close a name
# ("Acme Inc.", "Sammy Davis Jr.") only before a capitalised word or the end.
LEADING_ABBREVIATIONS = _words(
    "st mt ft dr mr mrs ms mx prof rev fr gen capt col lt sgt gov sen hon e.g i.e vs approx"
)
CLOSING_ABBREVIATIONS = _words("inc corp co ltd llc plc bros jr sr etc dept univ ave blvd rd")
# Words that start a new sentence after "!" or a leading abbreviation's period: "Hi! My name is ...", but
# "Yahoo! Japan" and "St. Mary's" go on. A word missing here only keeps two sentences together.
SENTENCE_OPENERS = RULE_VERBS | _words(
    """
    i i'm i've i'd i'll my me mine we we're we've our us you you're your he he's she she's his her it
    it's its they they're their them this that these those there here the a an some any
    and but so or also then now anyway btw oh ok okay well yes yeah yep no nope not sure actually just
    maybe please pls thanks thank thx cheers sorry nice great cool awesome good perfect lol haha wow
    hi hello hey hiya howdy greetings
    what why how when where who which whose can could would will should shall do does did don't is are
    am was were have has had may might must
    be let let's tell help make get go see try
    """
)
# Lowercase words inside a place or person's name: "Rio de Janeiro", "Frankfurt am Main", "Ludwig van
# Beethoven" ("d'" glued: "Coeur d'Alene").
NAME_PARTICLES = _words("da de del della der den di do dos das du la le van von am upon")
