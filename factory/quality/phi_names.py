"""Name lexicon for the PHI rules: given names and surnames from many languages, written for this project.

Plain lower-case ASCII words, one string per list (split on whitespace). Names that are also ordinary
English words (rose, grace, will, mark, ...) are listed in AMBIGUOUS: the rules accept those only with
stronger context (a kinship word before, a verb after, a surname after).
"""

from __future__ import annotations

# The last two lines are short and familiar forms, as relatives are named in notes ("daughter jenny"); the
# ones that are also words are listed in AMBIGUOUS too.
_GIVEN = """
aaron abigail ada adam adele adrian agnes aileen alan albert alberta alfred alice alicia alison allen alma
amanda amber amelia amy andrea andrew angela angelina anita ann anna anne annette annie anthony antoinette
april arlene arnold arthur audrey barbara beatrice becky belinda benjamin bernadette bernard bernice bertha
betty beverly bill billy blanche bobby bonnie brenda brian bridget bruce bryan carl carla carmen carol
caroline carolyn carrie catherine cathy cecil cecilia charles charlene charlotte cheryl chester christina
christine christopher cindy claire clara clarence claude claudia clifford clyde colleen connie constance cora
craig cynthia daisy dale daniel danielle darlene david dawn dean deborah debra delia della delores dolores
denise dennis derek diana diane dianne dolly donald donna dora doris dorothy douglas duane earl edgar edith
edna edward edwin eileen elaine eleanor elena elizabeth ella ellen elmer eloise elsie emily emma ernest
esther ethel eugene eunice eva evelyn everett faith fannie felicia florence frances francis frank franklin
fred frederick gail gene geneva george gerald geraldine gertrude gilbert gladys glen glenda glenn
gloria gordon grace greg gregory gwendolyn harold harriet harry harvey hazel heather helen henrietta henry
herbert herman hilda holly hope howard hubert ida imogene inez irene iris irma isabel isabella ivy jack
jackie jacqueline james jamie jane janet janice jason jean jeanette jeanne jeffrey jennie jennifer jerome
jerry jesse jessica jessie jill jimmy jo joan joann joanne joe joel john johnnie jonathan joseph josephine
joy joyce juanita judith judy julia julian julie june justin karen katherine kathleen kathryn kathy katie
keith kelly kenneth kevin kimberly kirk kristen larry laura lauren laverne lawrence leah lena leo leon
leona leonard leroy leslie lester lillian lily linda lisa lloyd lois lorena loretta lorraine louis louise
lucille lucy luella lula lydia lynn mabel madeline mae maggie mamie marcia margaret margarethe marguerite
maria marian marie marilyn marion marjorie mark marlene marsha martha martin marvin mary matthew maureen
maxine megan melanie melissa melvin michael michelle mildred milton minnie miriam mollie muriel myrtle nancy
naomi natalie nellie nettie nicholas nicole nina nora norma norman olive oliver olivia opal oscar pamela
patricia patrick paul paula pauline pearl peggy penny peter philip phyllis priscilla rachel ralph ray
raymond rebecca regina rena rhonda richard rita robert roberta robin roger ronald rosa rosalie rose
rosemary ross roy ruby russell ruth sally samuel sandra sara sarah scott sharon sheila shirley sidney
sophia stanley stella stephanie stephen steven stuart sue susan sylvia tamara teresa thelma theodore
theresa thomas timothy tina todd tony tracy valerie vera verna vernon veronica victor victoria viola
violet vivian wallace walter wanda warren wayne wendy wesley wilbur willard william willie wilma
winifred yvonne zelda summer autumn hunter chase brooke crystal destiny harmony heaven honor marigold
jasmine jade opal angel sunny sandy rusty art pat bud buck cliff sterling miles dusty misty
aaliyah abdul abdullah abebe abena adaeze adebayo adeola adewale adwoa afia ahmad ahmed aisha akua akosua
alejandra alejandro alhassan ali alma amadou amani amara amina aminata amir anahita ananya andre andres
angelica anil anjali ansel antonio aranza arjun armando arturo asha ashok astrid ayaan ayodele ayumi
babajide baptiste beatriz bich binh bogdan boris camila carlos catalina cesar chidi chidinma chiamaka chika
chinedu chioma chukwuemeka cristina dagny daniela darius deepak dilnoza dimitri dmitri dong duc eduardo
efua ekaterina elif emeka emre enrique esperanza esteban fadumo farah farid fatima fatou fernanda fernando
francisco gabriela gaurav giorgos giovanni giulia giuseppe guadalupe gustavo hamid hana hao haruka hassan
hector heike hiroshi hoang hui ibrahim ifeoma ignacio ikechukwu ines ingrid irina isabela ismail ivan jamal
javier ji-ho jian jiho jin jing joao jorge jose juan juliana jun kaito karim kateryna kemal kenji khadija
kofi kwabena kwame kwasi lakshmi lan laszlo lei leila lina liu luca lucia luis lupe magdalena mahmoud
malik manuel marco marcos mariana mario marisol mateo matteo mehmet mei mihai miguel min minh ming mohamed
mohammad mohammed moses mustafa nadia nam nasser natasha nia nikolai nkechi nnamdi noor nuno obinna olga
oluwaseun omar oscar pablo paolo parisa pedro pilar ping precious priya qiang rafael rahul raj rajesh
ramon rania ravi reza ricardo roberto rodrigo rosario rui sakura salma samir sandeep sanjay santiago sara
sergei sergio seo-yeon shanice shanthi sibusiso silvia siobhan sipho sofia soo-jin sunil sven svetlana
taiwo takashi tatiana thabo thandiwe thi thu tomasz tran trinh tuan tunde umar valentina vijay vikram
ving wei wen xavier xiaoming xiaoyu xin yasmin yaw yetunde yoshiko yuki yusuf zainab zanele zeynep
zhen zhiwei ziad zofia agnieszka andrzej anneliese bjorn dagmar elke friedrich gunther hannelore helga
jens katarzyna klaus krzysztof lars magnus malgorzata mariusz nils piotr stanislaw ulrich wojciech
wolfgang patience mercy charity prudence felicity constance verity trinity honor nova aoife ciaran niamh padraig saoirse seamus sinead eamon declan brendan colm oisin
sophie chloe gemma hannah bethany lottie callum connor liam sean ryan kath jen jenn abbie lizzie nikki debs davy mikey
jenny mike rob nick matt ben tim pete phil rick molly polly teddy charlie meg jake luke jim sam chris liz beth kate jess dave steve andy josh zoe ellie tilly millie abby mandy nicky vicky debbie sammy tommy danny joey frankie ricky robbie stevie alfie archie freddie
"""

_SURNAMES = """
smith johnson williams brown jones miller davis garcia rodriguez wilson martinez anderson taylor thomas
hernandez moore martin jackson thompson white lopez lee gonzalez harris clark lewis robinson walker perez
hall young allen sanchez wright king scott green baker adams nelson hill ramirez campbell mitchell roberts
carter phillips evans turner torres parker collins edwards stewart flores morris nguyen murphy rivera cook
rogers morgan peterson cooper reed bailey bell gomez kelly howard ward cox diaz richardson wood watson
brooks bennett gray james reyes cruz hughes price myers long foster sanders ross morales powell sullivan
russell ortiz jenkins gutierrez perry butler barnes fisher henderson coleman simmons patterson jordan
reynolds hamilton graham kim gonzales alexander ramos wallace griffin west cole hayes chavez gibson bryant
ellis stevens murray ford marshall owens mcdonald harrison ruiz kennedy wells alvarez woods mendoza castillo
olson webb washington tucker freeman burns henry vasquez snyder simpson crawford jimenez porter mason shaw
gordon wagner hunter romero hicks dixon hunt palmer robertson black holmes stone meyer boyd mills warren fox
rose rice moreno schmidt patel ferguson nichols herrera medina ryan fernandez weaver daniels stephens
gardner payne kelley dunn pierce arnold tran spencer peters hawkins grant hansen castro hoffman hart elliott
cunningham knight bradley wang zhang li liu chen yang huang zhao wu zhou xu sun ma zhu hu guo lin he gao
luo zheng liang xie song tang han feng deng cao peng zeng xiao tian dong pan yuan cai jiang yu du ye cheng
wei su lu ding ren shen yao tan lim ng wong chan leung ho chow cheung tsang park choi jung kang cho yoon jang
lim han oh seo shin kwon hwang ahn song tanaka suzuki watanabe takahashi ito yamamoto nakamura kobayashi
kato yoshida yamada sasaki yamaguchi matsumoto inoue kimura shimizu hayashi saito yamazaki mori ikeda
pham hoang phan vu vo dang bui do ho ngo duong ly singh kumar sharma gupta shah mehta reddy rao iyer nair
das bose chatterjee banerjee mukherjee desai joshi kapoor khan malik hussain ahmed ali chaudhry qureshi
siddiqui rahman haddad khoury nasser saleh hassan ibrahim abdullah mansour farah said okafor okonkwo
adeyemi adebayo okeke nwosu eze obi mensah owusu boateng asante osei diallo traore toure keita camara
ndiaye kamau mwangi otieno ochieng mokoena dlamini nkosi ndlovu mahlangu kowalski kowalczyk nowak
wisniewski wojcik kaminski lewandowski zielinski szymanski petrovic jovanovic popescu ionescu horvath
nagy kovacs novak ivanov petrov smirnov volkov sokolov popov kuznetsov lindqvist johansson andersson
karlsson nilsson larsson olsen hansen jensen nielsen muller schneider fischer weber becker schulz
koch richter klein wolf neumann schwarz zimmermann braun kruger hartmann lange werner krause
lehmann rossi russo ferrari esposito bianchi romano colombo ricci marino greco bruno gallo conti
deluca costa giordano mancini rizzo lombardi moretti dubois durand leroy moreau simon laurent lefebvre
michel bernard petit fontaine delacroix silva santos oliveira souza pereira lima carvalho almeida
ferreira ribeiro rocha dias barbosa villanueva delgado navarro aguilar vargas ramos mendez guerrero
rojas salazar figueroa soto contreras luna sandoval pena rios acosta cabrera campos vega fuentes
obrien oconnor orourke murphy kelly byrne ryan walsh doyle mccarthy brennan fitzgerald gallagher
whitaker abernathy feldman goldberg cohen levy friedman katz schwartz rosenberg weiss kaplan
"""

_AMBIGUOUS = """
will mark bill rose grace joy hope faith june april may summer autumn dawn ivy iris pearl ruby amber
crystal holly robin daisy violet lily jade opal angel sunny sandy rusty art pat bud buck cliff sterling
miles dusty misty hunter chase brooke destiny harmony heaven honor marigold jasmine penny peggy sue ray
gene frank jack dean earl glen grant guy rich bob don ken jay lee sal sol tom jo ed al max val cal mae
ella victor norman page stone wood king bell brown white green black young long hill cook fox rice reed
price hunt rose ward webb gray grant lane may carter walker park song long jung oh do ho ma he lu yu
su wei ng hall wells woods mills power powell moore ball banks bishop church day dunn english fisher
ford freeman gardner golden hardy haven hood house knight love major marsh mason noble page pool porter
russell sharp short small snow spencer summers swift tanner turner waters wise marshall baker parker
cole west long lim tan mo hu he dong may bud ali amir nam lan min thi jin ping wen xin hui mei jun lei
sara lina nina nora vera ada ida eva ina ann anna hana
dolly bobby billy jimmy jerry ruth sally bonnie norma chester
said sun pan tang ding hart wolf dale vega luna lima leo das obi sol carol jean hazel thu foster burns
brooks collins kelly lange koch bailey perry cooper butler palmer pierce shaw murray morris
sandy dusty rusty penny olive opal crystal sterling earnest ernest frank patience precious honor constance
felicity prudence charity mercy verity trinity christian angel nova star sky river ocean storm rain
jenny mike rob nick matt ben tim pete phil rick molly polly teddy charlie meg jake luke jim sam chris liz beth kate jess dave steve andy josh zoe ellie tilly millie abby mandy nicky vicky debbie sammy tommy danny joey frankie ricky robbie stevie alfie archie freddie
"""

GIVEN_NAMES = frozenset(_GIVEN.split())
SURNAMES = frozenset(_SURNAMES.split())
AMBIGUOUS = frozenset(_AMBIGUOUS.split())
ALL_NAMES = GIVEN_NAMES | SURNAMES

# Towns and cities (smaller than a state, so identifying under HIPAA). Multi-word places keep their spaces.
_PLACES = """
boston worcester springfield lowell cambridge quincy lynn newton somerville framingham haverhill waltham malden
brookline medford taunton chicopee revere peabody methuen barnstable pittsfield attleboro salem westfield
leominster fitchburg beverly holyoke marlborough woburn chelsea braintree dorchester roxbury jamaica_plain
brighton allston charlestown dedham needham wellesley natick norwood milton weymouth plymouth hingham
duxbury marshfield scituate falmouth hyannis nantucket amherst northampton greenfield gloucester
newburyport andover lexington concord arlington belmont watertown winchester burlington billerica
chelmsford dracut tewksbury wilmington stoneham wakefield saugus swampscott marblehead danvers
providence pawtucket cranston warwick hartford bridgeport stamford worcester manchester nashua portland
bangor burlington albany buffalo rochester syracuse yonkers newark jersey_city trenton philadelphia
pittsburgh baltimore richmond norfolk raleigh charlotte atlanta savannah miami orlando tampa jacksonville
tallahassee nashville memphis louisville cleveland columbus cincinnati detroit chicago milwaukee minneapolis
st._louis kansas_city omaha denver phoenix tucson albuquerque dallas houston austin san_antonio el_paso
oklahoma_city tulsa new_orleans birmingham little_rock las_vegas reno salt_lake_city boise seattle spokane
tacoma sacramento oakland san_francisco san_jose fresno los_angeles san_diego long_beach anaheim honolulu
anchorage brooklyn queens bronx manhattan harlem staten_island new_york_city washington_dc
london birmingham glasgow edinburgh dublin belfast paris lyon marseille madrid barcelona seville lisbon
porto rome milan naples palermo florence venice turin berlin munich hamburg cologne frankfurt vienna zurich
geneva amsterdam rotterdam brussels antwerp copenhagen stockholm oslo helsinki warsaw krakow prague budapest
bucharest sofia athens thessaloniki istanbul ankara belgrade zagreb kyiv kiev lviv odessa moscow minsk
tehran baghdad beirut damascus amman jerusalem tel_aviv cairo alexandria casablanca tunis algiers lagos
abuja ibadan kano accra kumasi dakar bamako nairobi mombasa kampala kigali addis_ababa mogadishu khartoum
johannesburg durban cape_town soweto harare lusaka luanda kinshasa mumbai delhi new_delhi bangalore
bengaluru chennai kolkata hyderabad pune ahmedabad karachi lahore islamabad dhaka kathmandu colombo
beijing shanghai guangzhou shenzhen chengdu wuhan tianjin hong_kong taipei seoul busan tokyo osaka kyoto
manila quezon_city hanoi saigon ho_chi_minh_city bangkok jakarta kuala_lumpur singapore sydney melbourne
brisbane perth auckland toronto montreal vancouver ottawa calgary winnipeg halifax quebec_city
mexico_city guadalajara monterrey tijuana havana san_juan santo_domingo port-au-prince kingston bogota
medellin lima quito caracas santiago buenos_aires sao_paulo rio_de_janeiro salvador recife montevideo
"""

PLACES = frozenset(place.replace("_", " ") for place in _PLACES.split())
